//! Stage `crates`: every workspace crate that claims Windows or macOS support is type-checked for
//! those targets with Debian's std (`-Zbuild-std=std,panic_abort`). A crate claims support in
//! its own manifest, so adding a crate never means editing the xtask:
//!
//! ```toml
//! [package.metadata.hardmute]
//! cross-check = ["x86_64-pc-windows-msvc", "aarch64-apple-darwin", "x86_64-apple-darwin"]
//! ```
//!
//! `cargo check` of the library and binaries only: no linker is involved (linking is the
//! `macos`/`windows` stages' job), and test targets would need panic = unwind.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};

use crate::report::Report;
use crate::toolchain::{repo_root, run, target_dir, Toolchain};

/// Targets a crate may list; anything else is a typo worth failing on.
pub const SUPPORTED_TARGETS: &[&str] = &[
    "x86_64-pc-windows-msvc",
    "aarch64-apple-darwin",
    "x86_64-apple-darwin",
];

/// Debian's std with panic = abort, as the plug-in and the bridge ship. The `macos` stage builds
/// with these same settings, so both agree on what std the macOS crates are built against.
pub const BUILD_STD: &[&str] = &[
    "-Zbuild-std=std,panic_abort",
    "--config",
    "profile.dev.panic=\"abort\"",
];

/// target -> crates that claim it, from `cargo metadata --no-deps` JSON.
pub fn claims(metadata: &serde_json::Value) -> Result<BTreeMap<String, Vec<String>>> {
    let mut by_target: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let name = package["name"].as_str().unwrap_or_default();
        let claimed = &package["metadata"]["hardmute"]["cross-check"];
        if claimed.is_null() {
            continue;
        }
        let Some(targets) = claimed.as_array() else {
            bail!("{name}: package.metadata.hardmute.cross-check must be a list of targets");
        };
        for target in targets {
            let target = target.as_str().unwrap_or_default();
            if !SUPPORTED_TARGETS.contains(&target) {
                bail!(
                    "{name}: unknown cross-check target `{target}` (known: {SUPPORTED_TARGETS:?})"
                );
            }
            by_target
                .entry(target.to_owned())
                .or_default()
                .push(name.to_owned());
        }
    }
    Ok(by_target)
}

pub fn run_stage(toolchain: &Toolchain, report: &mut Report) {
    let claimed = match workspace_claims(toolchain) {
        Ok(claimed) => claimed,
        Err(e) => {
            report.step("crates", "(metadata)", || Err(e));
            return;
        }
    };
    if claimed.is_empty() {
        report.skip(
            "crates",
            "(none)",
            "no workspace crate declares package.metadata.hardmute.cross-check",
        );
        return;
    }
    for (target, crates) in &claimed {
        report.step("crates", target, || check(toolchain, target, crates));
    }
}

fn workspace_claims(toolchain: &Toolchain) -> Result<BTreeMap<String, Vec<String>>> {
    let out = toolchain
        .cargo(&repo_root())
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    claims(&serde_json::from_slice(&out.stdout)?)
}

fn check(toolchain: &Toolchain, target: &str, crates: &[String]) -> Result<()> {
    toolchain.verify(&[])?;
    eprintln!("checking {} for {target}", crates.join(", "));
    let mut cmd = toolchain.cargo(&repo_root());
    cmd.args(["check", "--lib", "--bins", "--target", target]);
    for name in crates {
        cmd.args(["--package", name]);
    }
    run(cmd
        .args(BUILD_STD)
        .arg("--target-dir")
        .arg(check_target_dir(target)))
}

/// On x86_64-pc-windows-msvc the per-triple dir holds the core-only builds (core, selftest,
/// driver): a check-mode std there rebuilt on every run, so msvc checks share the `windows`
/// stage's check-mode std dir (the installer's clippy) instead.
fn check_target_dir(target: &str) -> std::path::PathBuf {
    use crate::targets::windows::{units_target_dir, Units, MSVC};
    if target == MSVC {
        units_target_dir(MSVC, true, Units::Check)
    } else {
        target_dir(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(packages: serde_json::Value) -> serde_json::Value {
        serde_json::json!({ "packages": packages })
    }

    #[test]
    fn claims_are_grouped_by_target() {
        let meta = metadata(serde_json::json!([
            { "name": "hardmuted", "metadata": { "hardmute": { "cross-check": ["x86_64-pc-windows-msvc", "aarch64-apple-darwin"] } } },
            { "name": "hardmute-ipc", "metadata": { "hardmute": { "cross-check": ["x86_64-pc-windows-msvc"] } } },
            { "name": "hardmute-backend-linux", "metadata": null },
            { "name": "other", "metadata": { "docs": {} } }
        ]));
        let got = claims(&meta).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got["x86_64-pc-windows-msvc"], ["hardmuted", "hardmute-ipc"]);
        assert_eq!(got["aarch64-apple-darwin"], ["hardmuted"]);
    }

    #[test]
    fn a_mistyped_target_or_shape_fails() {
        let typo = metadata(serde_json::json!([
            { "name": "x", "metadata": { "hardmute": { "cross-check": ["x86_64-pc-windows-gnu"] } } }
        ]));
        assert!(claims(&typo)
            .unwrap_err()
            .to_string()
            .contains("x86_64-pc-windows-gnu"));
        let shape = metadata(serde_json::json!([
            { "name": "x", "metadata": { "hardmute": { "cross-check": "aarch64-apple-darwin" } } }
        ]));
        assert!(claims(&shape).is_err());
    }
}
