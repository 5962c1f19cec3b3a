//! Stage `core`: `hardmute-core` compiled for every non-Linux target with `-Zbuild-std=core`
//! only, as the Windows kernel driver will build it. `alloc` is not in the sysroot of these
//! builds, so a dependency on it anywhere in the core's graph is a hard error here.

use anyhow::{ensure, Result};

use crate::report::Report;
use crate::toolchain::{repo_root, run, target_dir, Toolchain};

pub const TARGETS: &[&str] = &[
    "x86_64-pc-windows-msvc",
    "aarch64-apple-darwin",
    "x86_64-apple-darwin",
];

/// What every core-only build passes: the sysroot contains `core` (and compiler_builtins) and
/// nothing else; panic = abort as in the kernel driver and the HAL plug-in.
pub const BUILD_STD_CORE: &[&str] = &[
    "-Zbuild-std=core",
    "--config",
    "profile.dev.panic=\"abort\"",
];

pub fn run_stage(toolchain: &Toolchain, report: &mut Report) {
    for target in TARGETS {
        report.step("core", target, || build(toolchain, target));
    }
}

fn build(toolchain: &Toolchain, target: &str) -> Result<()> {
    toolchain.verify(&[])?;
    let target_dir = target_dir(target);
    run(toolchain
        .cargo(&repo_root())
        .args([
            "build",
            "--package",
            "hardmute-core",
            "--lib",
            "--target",
            target,
        ])
        .args(BUILD_STD_CORE)
        .arg("--target-dir")
        .arg(&target_dir))?;
    let rlib = target_dir.join(target).join("debug/libhardmute_core.rlib");
    ensure!(
        rlib.exists(),
        "cargo succeeded but {} is missing",
        rlib.display()
    );
    Ok(())
}
