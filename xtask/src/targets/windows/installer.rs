//! `windows-installer`: `installer/windows` (its own workspace, package `hardmute-install`),
//! clippy-clean for x86_64-pc-windows-msvc (clippy type-checks everything `cargo check` does,
//! plus the lints) and linked like the userspace programs: a console PE32+ importing only
//! system DLLs (SetupAPI, newdev).

use anyhow::Result;

use super::user::{build_and_check, build_target_dir, Claim};
use super::{units_target_dir, verify_clippy, Units, MSVC};
use crate::report::Report;
use crate::targets::crates::BUILD_STD;
use crate::toolchain::{repo_root, run, Toolchain};

const DIR: &str = "installer/windows";
const PACKAGE: &str = "hardmute-install";

pub fn run_rows(toolchain: &Toolchain, report: &mut Report) {
    report.step("windows-installer", &format!("{MSVC} clippy"), || {
        clippy(toolchain)
    });
    report.step_noted("windows-installer", &format!("{MSVC} link"), || {
        let workspace = repo_root().join(DIR);
        let claim = Claim {
            package: PACKAGE.into(),
            bins: vec![(PACKAGE.into(), workspace.join("src/main.rs"))],
            wine_tests: Vec::new(),
            gui: Vec::new(),
        };
        build_and_check(
            toolchain,
            &workspace,
            &build_target_dir(MSVC),
            MSVC,
            &[claim],
        )
        .map(Some)
    });
}

fn clippy(toolchain: &Toolchain) -> Result<()> {
    verify_clippy(toolchain)?;
    let mut cmd = toolchain.cargo(&repo_root().join(DIR));
    cmd.args([
        "clippy",
        "--package",
        PACKAGE,
        "--lib",
        "--bins",
        "--target",
        MSVC,
    ]);
    // No linker setting: cargo hashes the configured linker into every unit's fingerprint, and
    // the `crates` stage's msvc `cargo check` shares this dir without one.
    cmd.args(BUILD_STD)
        .arg("--target-dir")
        .arg(units_target_dir(MSVC, true, Units::Check));
    run(cmd.args(["--", "-D", "warnings"]))
}
