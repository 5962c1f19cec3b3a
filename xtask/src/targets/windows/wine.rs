//! `windows-wine`: the test targets the Windows crates list (`wine-tests`), built for
//! x86_64-pc-windows-gnu and run by headless wine as cargo's runner, counts in the summary row.
//!
//! Wine gets a private prefix under the cache (`wine/prefix`, made once by `wineboot -i`),
//! with `bcryptprimitives.dll` built from `xtask/shims/bcryptprimitives.c`: Rust's std imports
//! ProcessPrng from it and Debian 12's wine 8.0 does not have that DLL. No display: DISPLAY
//! and WAYLAND_DISPLAY are removed, so nothing opens a window.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{ensure, Context, Result};

use super::user::{build_target_dir, configure, workspace_claims, Claim};
use super::{target_config, GNU, MINGW_GCC};
use crate::report::Report;
use crate::toolchain::{cache_root, describe, repo_root, run, Toolchain};

/// Debian's wine64 loader and server (package wine64).
pub const WINE: &str = "/usr/lib/wine/wine64";
pub const WINESERVER: &str = "/usr/lib/wine/wineserver";

const PRNG_SHIM: &str = include_str!("../../../shims/bcryptprimitives.c");

pub fn run_rows(toolchain: &Toolchain, report: &mut Report) {
    let claimed: Vec<Claim> = match workspace_claims(toolchain) {
        Ok(c) => c.into_iter().filter(|c| !c.wine_tests.is_empty()).collect(),
        Err(e) => {
            report.step("windows-wine", "(metadata)", || Err(e));
            return;
        }
    };
    if claimed.is_empty() {
        report.skip("windows-wine", GNU, "no crate lists wine-tests");
        return;
    }
    report.step_noted("windows-wine", GNU, || {
        run_tests(toolchain, &claimed).map(|c| Some(c.to_string()))
    });
}

/// Sums of every `test result:` line of libtest's output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TestCounts {
    /// Test binaries that reported a result.
    pub binaries: u32,
    pub passed: u32,
    pub failed: u32,
    pub ignored: u32,
}

impl std::fmt::Display for TestCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} passed, {} failed, {} ignored ({} test binaries under wine)",
            self.passed, self.failed, self.ignored, self.binaries
        )
    }
}

/// Parses libtest's `test result: ok. 13 passed; 0 failed; 1 ignored; ...` lines.
pub fn parse_test_results(stdout: &str) -> TestCounts {
    let mut counts = TestCounts::default();
    for line in stdout.lines() {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            continue;
        };
        counts.binaries += 1;
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(label), Some(number)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(n) = number.parse::<u32>() else {
                continue;
            };
            match label {
                "passed" => counts.passed += n,
                "failed" => counts.failed += n,
                "ignored" => counts.ignored += n,
                _ => {}
            }
        }
    }
    counts
}

fn run_tests(toolchain: &Toolchain, claimed: &[Claim]) -> Result<TestCounts> {
    let prefix = prepare_prefix()?;
    let mut total = TestCounts::default();
    let mut failures = Vec::new();
    for claim in claimed {
        let mut cmd = toolchain.cargo(&repo_root());
        cmd.args(["test", "--no-fail-fast", "--target", GNU]);
        configure(toolchain, &mut cmd, GNU, &build_target_dir(GNU))?;
        cmd.args(target_config(GNU, "runner", WINE))
            .args(["--package", &claim.package]);
        for test in &claim.wine_tests {
            cmd.args(test.cargo_args());
        }
        // Print what passing tests say, so a `SKIPPED:` line is seen (libtest hides it).
        cmd.args(["--", "--nocapture"]);
        wine_env(&mut cmd, &prefix);
        eprintln!("+ {}", describe(&cmd));
        // libtest writes results to stdout: captured for the counts, echoed for the log.
        let out = cmd
            .stderr(Stdio::inherit())
            .output()
            .context("running cargo test")?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        eprint!("{stdout}");
        let counts = parse_test_results(&stdout);
        if !out.status.success() {
            failures.push(format!(
                "{} ({}, exit {})",
                claim.package, counts, out.status
            ));
        } else if counts.binaries == 0 || counts.passed == 0 {
            failures.push(format!("{}: no test ran ({counts})", claim.package));
        } else if let Some(line) = skipped_lines(&stdout).first() {
            failures.push(format!(
                "{}: a test skipped its checks: {line}",
                claim.package
            ));
        }
        total.binaries += counts.binaries;
        total.passed += counts.passed;
        total.failed += counts.failed;
        total.ignored += counts.ignored;
    }
    // Let this prefix's wineserver exit on its own (a few seconds) instead of outliving the run.
    let _ = Command::new(WINESERVER)
        .arg("-w")
        .env("WINEPREFIX", &prefix)
        .status();
    ensure!(failures.is_empty(), "under wine: {}", failures.join("; "));
    Ok(total)
}

pub fn wine_env(cmd: &mut Command, prefix: &Path) {
    cmd.env("WINEPREFIX", prefix)
        .env("WINEDEBUG", "-all")
        // No Mono/Gecko installers on first start; no display.
        .env("WINEDLLOVERRIDES", "mscoree,mshtml=")
        // ALSA's null PCM as the default device: wine's winealsa then offers one capture
        // endpoint, so the WASAPI capture tests really capture instead of skipping.
        .env("ALSA_CONFIG_PATH", repo_root().join(ALSA_NULL_CONFIG))
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY");
}

/// The ALSA config with a null default PCM (`userspace/backend/windows/tests/wine/`).
pub const ALSA_NULL_CONFIG: &str = "userspace/backend/windows/tests/wine/asound.conf";

/// Tests that print `SKIPPED:` ran nothing that could fail (e.g. no capture endpoint).
pub fn skipped_lines(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("SKIPPED"))
        .collect()
}

/// The private prefix of the wine tests (`wine/prefix`).
fn prepare_prefix() -> Result<PathBuf> {
    prepare_prefix_at("prefix")
}

/// A private prefix `wine/<name>` in the cache: `wineboot -i` once, then the ProcessPrng shim
/// in system32 (rebuilt and copied again when its source changes).
pub fn prepare_prefix_at(name: &str) -> Result<PathBuf> {
    ensure!(
        PathBuf::from(WINE).exists(),
        "{WINE} is missing: install wine64 (`cargo xtask cross-check deps`)"
    );
    let dir = cache_root().join("wine");
    let prefix = dir.join(name);
    let system32 = prefix.join("drive_c/windows/system32");
    if !prefix.join("system.reg").exists() || !system32.is_dir() {
        let _ = fs::remove_dir_all(&prefix);
        fs::create_dir_all(&dir)?;
        let mut boot = Command::new(WINE);
        boot.args(["wineboot", "-i"]);
        wine_env(&mut boot, &prefix);
        run(&mut boot)?;
        let mut wait = Command::new(WINESERVER);
        wait.arg("-w");
        wine_env(&mut wait, &prefix);
        run(&mut wait)?;
        ensure!(system32.is_dir(), "wineboot made no {}", system32.display());
    }
    let source = dir.join("bcryptprimitives.c");
    let dll = dir.join("bcryptprimitives.dll");
    if fs::read_to_string(&source).ok().as_deref() != Some(PRNG_SHIM) || !dll.exists() {
        fs::write(&source, PRNG_SHIM)?;
        run(Command::new(MINGW_GCC)
            .args(["-shared", "-O2", "-s", "-o"])
            .arg(&dll)
            .arg(&source)
            .arg("-lbcrypt"))?;
    }
    let installed = system32.join("bcryptprimitives.dll");
    if fs::read(&installed).ok() != Some(fs::read(&dll)?) {
        fs::copy(&dll, &installed)?;
    }
    Ok(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_lines_are_summed_and_other_lines_ignored() {
        let out = "\
running 13 tests
test frames_round_trip ... ok
test result: ok. 13 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.52s

running 3 tests
test result: FAILED. 1 passed; 1 failed; 1 ignored; 0 measured; 2 filtered out; finished in 0.01s
note: a test result: mentioned mid-line
";
        let counts = parse_test_results(out);
        assert_eq!(
            counts,
            TestCounts {
                binaries: 2,
                passed: 14,
                failed: 1,
                ignored: 1
            }
        );
        assert_eq!(
            counts.to_string(),
            "14 passed, 1 failed, 1 ignored (2 test binaries under wine)"
        );
        assert_eq!(parse_test_results("no tests here"), TestCounts::default());
    }

    #[test]
    fn a_test_that_skips_is_noticed_and_the_alsa_config_exists() {
        let out = "running 1 test\nSKIPPED: no capture endpoint\ntest x ... ok\n";
        assert_eq!(skipped_lines(out), ["SKIPPED: no capture endpoint"]);
        assert!(skipped_lines("test skipped_thing ... ok\n").is_empty());
        assert!(repo_root().join(ALSA_NULL_CONFIG).exists());
    }
}
