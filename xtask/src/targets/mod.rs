//! One module per cross-check stage, plus the link step they share.

pub mod core;
pub mod crates;
pub mod selftest;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{ensure, Context, Result};

use crate::toolchain::{run, target_dir, Toolchain};

/// Builds and links one cdylib with `cargo rustc`, so `link_args` reach the final crate only:
/// the cached std/core builds in the per-target dir are shared with every other stage (their
/// flags never change). Returns the linked file (`lib<name>.dylib` or `<name>.dll`).
///
/// Cargo does not relink when only the SDK stubs or linker inputs changed, so `final_src` (the
/// final crate's root file) is marked as modified first: the link always uses current inputs,
/// and re-compiling that one crate costs a second or two.
#[allow(clippy::too_many_arguments)]
pub fn link_cdylib(
    toolchain: &Toolchain,
    workspace: &Path,
    final_src: &Path,
    package: &str,
    target: &str,
    build_std: &[&str],
    sdkroot: Option<&Path>,
    link_args: &[String],
) -> Result<PathBuf> {
    fs::File::options()
        .write(true)
        .open(final_src)
        .and_then(|f| f.set_modified(SystemTime::now()))
        .with_context(|| format!("touching {}", final_src.display()))?;
    let dir = target_dir(target);
    let mut cmd = toolchain.cargo(workspace);
    cmd.args(["rustc", "--package", package, "--lib", "--target", target])
        .args(build_std)
        .arg("--target-dir")
        .arg(&dir)
        .arg("--")
        .args(link_args);
    if let Some(sdk) = sdkroot {
        cmd.env("SDKROOT", sdk);
    }
    run(&mut cmd)?;
    let stem = package.replace('-', "_");
    let file = if target.contains("apple") {
        format!("lib{stem}.dylib")
    } else {
        format!("{stem}.dll")
    };
    let out = dir.join(target).join("debug").join(file);
    ensure!(
        out.exists(),
        "link succeeded but {} is missing",
        out.display()
    );
    Ok(out)
}
