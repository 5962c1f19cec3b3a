//! Stage `macos-run`: the shipped plug-in's own bytes, run on Linux.
//!
//! The x86_64 slice of the universal `HardMute.driver` the `macos` stage assembled is mapped and
//! linked by `hardmute-macos-loader` (`tests/macos-loader`, test-only: dyld-info rebases and
//! binds, thread-local variables, a libSystem and CoreFoundation shim with call counters), and
//! `driver/macos/plugin/tests/sim_coreaudiod.rs` runs every scenario against it as well as against the
//! Linux build of the crate. `HARDMUTE_MACHO_REQUIRED=1` makes a missing or unloadable slice a
//! failure instead of a skip. Built with the rig's host toolchain in its own target dir.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{ensure, Context, Result};

use crate::report::Report;
use crate::targets::windows::wine::{parse_test_results, skipped_lines};
use crate::toolchain::{cache_root, describe, repo_root, Toolchain};

/// The scenario module of the shipped plug-in in `sim_coreaudiod` (each test's name starts so).
const SHIPPED_PREFIX: &str = "test shipped_x86_64::";

pub fn run_stage(toolchain: &Toolchain, report: &mut Report) {
    report.step_noted("macos-run", "x86_64 slice (loaded on Linux)", || {
        run(toolchain).map(Some)
    });
}

/// The universal executable the `macos` stage leaves in the cache.
pub fn bundle_executable() -> PathBuf {
    cache_root().join("macos-bundle/HardMute.driver/Contents/MacOS/HardMute")
}

/// Sources compiled into the plug-in (its own crate and the core), and the lock file.
const PLUGIN_SOURCES: &[&str] = &["driver/macos/plugin/src", "driver/core/src", "Cargo.lock"];

/// A plug-in source file modified after `exe` was written (the bundle would be stale).
pub fn newer_source(exe: &Path) -> Result<Option<PathBuf>> {
    let built = fs::metadata(exe)?.modified()?;
    let mut stack: Vec<PathBuf> = PLUGIN_SOURCES.iter().map(|p| repo_root().join(p)).collect();
    while let Some(path) = stack.pop() {
        let meta = fs::metadata(&path).with_context(|| path.display().to_string())?;
        if meta.is_dir() {
            for entry in fs::read_dir(&path)? {
                stack.push(entry?.path());
            }
        } else if meta.modified()? > built {
            return Ok(Some(path));
        }
    }
    Ok(None)
}

fn run(toolchain: &Toolchain) -> Result<String> {
    let exe = bundle_executable();
    ensure!(
        exe.exists(),
        "{} is missing: run the `macos` stage first",
        exe.display()
    );
    if let Some(newer) = newer_source(&exe)? {
        anyhow::bail!(
            "{} is older than {}: run the `macos` stage first",
            exe.display(),
            newer.display()
        );
    }
    let mut cmd = toolchain.cargo(&repo_root());
    cmd.args([
        "test",
        "--no-fail-fast",
        "--package",
        "hardmute-macos-loader",
        "--package",
        "hardmute-macos-plugin",
        "--test",
        "sim_coreaudiod",
        "--test",
        "shipped",
        "--test",
        "shim",
        "--target-dir",
    ])
    .arg(cache_root().join("target/host"))
    .env("HARDMUTE_MACHO_PLUGIN", &exe)
    .env("HARDMUTE_MACHO_REQUIRED", "1");
    eprintln!("+ {}", describe(&cmd));
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo test")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprint!("{stdout}");
    let counts = parse_test_results(&stdout);
    let shipped = stdout
        .lines()
        .filter(|l| l.starts_with(SHIPPED_PREFIX) && l.ends_with(" ok"))
        .count();
    ensure!(
        out.status.success(),
        "tests failed ({} passed, {} failed, exit {})",
        counts.passed,
        counts.failed,
        out.status
    );
    ensure!(
        counts.binaries >= 3 && shipped > 0,
        "expected the loader's tests and the shipped scenarios to run ({} binaries, {shipped} shipped scenarios)",
        counts.binaries
    );
    if let Some(line) = skipped_lines(&stdout).first() {
        anyhow::bail!("a test skipped its checks: {line}");
    }
    Ok(format!(
        "{} passed ({shipped} scenarios on the shipped bytes), {} ignored",
        counts.passed, counts.ignored
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_older_than_a_plugin_source_is_stale() {
        let dir = std::env::temp_dir().join(format!("xtask-macos-run-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let exe = dir.join("HardMute");
        fs::write(&exe, b"x").unwrap();
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        fs::File::options()
            .write(true)
            .open(&exe)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let newer = newer_source(&exe)
            .unwrap()
            .expect("every source is newer than 1970");
        assert!(PLUGIN_SOURCES
            .iter()
            .any(|p| newer.starts_with(repo_root().join(p))));
        fs::File::options()
            .write(true)
            .open(&exe)
            .unwrap()
            .set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(3600))
            .unwrap();
        assert_eq!(newer_source(&exe).unwrap(), None);
        fs::remove_dir_all(&dir).unwrap();
    }
}
