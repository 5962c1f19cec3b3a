//! `windows-kernel`: the shipped driver `.sys` (byte-for-byte the file the `windows` stage
//! links in release and the installer ships) loaded by Wine's kernel layer (`winedevice.exe`
//! with Wine's `ntoskrnl.exe`/`hal.dll`) in a private prefix, with a project-built stand-in
//! `portcls.sys` beside it (`tests/wine-kernel/portcls`), and driven by a Windows test program
//! (`tests/wine-kernel/probe`, x86_64-pc-windows-gnu) that uses the daemon's own control-device
//! client.
//!
//! Rows: `build` (the three binaries), `load` (CreateService SERVICE_KERNEL_DRIVER +
//! StartService: DriverEntry runs and its `DbgPrintEx` line reaches Wine's `debugstr`
//! channel, Wine's gaps are filled), `control` (the IOCTL ABI against
//! the loaded driver), `unload` (DriverUnload, the control device is gone, the `.sys` in the
//! prefix is still byte-identical), `pnp + stream` (a root-enumerated device installed from a
//! test INF, as Wine's `driver_pnp` test does: AddDevice, IRP_MN_START_DEVICE, then the
//! stand-in opens and runs capture streams against the wave miniport and reports, then audio
//! through the ring: the probe's bridge, with the daemon's code, writes a known signal into a
//! named section the stand-in's test hook gives the driver as REGISTER_BRIDGE's MDL mapping,
//! and the stand-in checks it in the cyclic buffer while live and exact zeros while muted;
//! the row's note names the hook), and
//! `clippy` of the stand-in (msvc, core) and the probe (gnu, all targets). Between `control`
//! and `unload`, `daemon` runs the real `hardmuted.exe` (gnu) twice against the loaded driver
//! and `hardmute.exe unmute`/`mute` through it. Every wine run is bounded by [`STEP_TIMEOUT`]; Wine's
//! stderr (winedevice included) and the stand-in's log are kept in `wine/kernel-logs/` in the
//! cache and their tails printed when a row fails.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

use super::driver::link_sys;
use super::user::{build_target_dir, configure};
use super::wine::{prepare_prefix_at, wine_env, WINE, WINESERVER};
use super::{units_target_dir, verify_clippy, Units, GNU, MSVC};
use crate::report::Report;
use crate::targets::core::BUILD_STD_CORE;
use crate::targets::{link, Product, RustcLink};
use crate::toolchain::{cache_root, describe, repo_root, run, Toolchain};

const STAGE: &str = "windows-kernel";
const STANDIN_DIR: &str = "tests/wine-kernel/portcls";
const STANDIN_PACKAGE: &str = "hardmute-standin-portcls";
const PROBE_PACKAGE: &str = "hardmute-wine-kernel-probe";
const PROBE_BIN: &str = "wine-kernel-probe";
/// The stand-in is a kernel-mode DLL: native subsystem, no CRT; it imports ntoskrnl.exe and,
/// being Wine-only, kernel32/advapi32.
pub const STANDIN_LINK_FLAGS: &[&str] = &["/SUBSYSTEM:NATIVE", "/ENTRY:DllEntry", "/NODEFAULTLIB"];
const PREFIX: &str = "kernel-prefix";
/// Any single wine run (service start, the IOCTL checks, the stop).
pub const STEP_TIMEOUT: Duration = Duration::from_secs(120);
/// Wine's error and import-resolution messages, ntoskrnl's warnings/FIXMEs (an
/// unimplemented kernel function the driver reached shows up here), and `warn+debugstr`:
/// Wine prints every `DbgPrintEx` line on that channel (the driver's log, driver/windows/kernel/src/log.rs).
const WINEDEBUG: &str =
    "fixme-all,err+all,warn+module,warn+ntoskrnl,fixme+ntoskrnl,err+plugplay,warn+debugstr";
/// The driver's first log line (driver/windows/kernel/src/adapter.rs, `DriverEntry`).
const DRIVER_ENTRY_LOG: &str = "hardmute: DriverEntry: HardMute virtual microphone driver";
/// Where the driver and the stand-in go in the prefix (Wine's loader finds `portcls.sys`
/// in the importing driver's directory).
const DRIVERS: &str = "drive_c/windows/system32/drivers";
const SYS_WINDOWS_PATH: &str = r"C:\windows\system32\drivers\hardmute.sys";
/// The stand-in's log (tests/wine-kernel/portcls/src/log.rs), in the prefix and as Windows
/// sees it.
const STANDIN_LOG: &str = "drive_c/hardmute-portcls.log";
const STANDIN_LOG_WINDOWS: &str = r"C:\hardmute-portcls.log";

struct Rig {
    sys: PathBuf,
    prefix: PathBuf,
    probe: PathBuf,
    logs: PathBuf,
}

pub fn run_rows(toolchain: &Toolchain, report: &mut Report) {
    let mut rig = None;
    report.step_noted(
        STAGE,
        "build (release .sys, stand-in portcls.sys, probe)",
        || {
            let r = build(toolchain)?;
            let note = format!(
                "hardmute.sys {} bytes (release, as shipped)",
                fs::metadata(&r.sys)?.len()
            );
            rig = Some(r);
            Ok(Some(note))
        },
    );
    let Some(rig) = rig else {
        report.skip(STAGE, "load", "nothing built");
        return;
    };
    let mut loaded = false;
    report.step_noted(STAGE, "load (service: DriverEntry, gaps filled)", || {
        let note = rig.load()?;
        loaded = true;
        Ok(Some(note))
    });
    if loaded {
        report.step_noted(STAGE, "control (IOCTL ABI, owner, bridge)", || {
            let note = rig.probe_step("control", "control")?;
            // The request `control` left pending when it exited must have been cancelled.
            rig.probe_step("control", "after-exit")?;
            Ok(Some(note))
        });
        report.step_noted(STAGE, "daemon (hardmuted.exe + hardmute.exe)", || {
            let dir = rig.probe.parent().expect("probe dir");
            let hardmuted = dir.join("hardmuted.exe");
            let cli = dir.join("hardmute.exe");
            ensure!(
                hardmuted.is_file() && cli.is_file(),
                "{} or {} missing (built by the build row)",
                hardmuted.display(),
                cli.display()
            );
            let (h, c) = (unix_to_wine(&hardmuted), unix_to_wine(&cli));
            rig.probe_step_args("daemon", &["daemon", &h, &c]).map(Some)
        });
        report.step_noted(STAGE, "unload (DriverUnload, .sys unchanged)", || {
            rig.unload().map(Some)
        });
    } else {
        report.skip(STAGE, "control", "the driver did not load");
    }
    report.step_noted(
        STAGE,
        "pnp + stream (root device, StartDevice, capture streams)",
        || {
            let note = rig.probe_step_args("pnp + stream", &["pnp", STANDIN_LOG_WINDOWS])?;
            let hooks = hook_lines(&rig.standin_log());
            ensure!(
                !hooks.is_empty(),
                "pnp + stream: audio through the ring ran without the stand-in's hook (no `hook applied:` line){}",
                rig.diagnostics()
            );
            Ok(Some(format!(
                "{note}; audio through the ring with the test hook applied: the driver's IRP_MJ_DEVICE_CONTROL wrapped, REGISTER_BRIDGE's MDL MappedSystemVa -> a named section the bridge writes ({} time(s))",
                hooks.len()
            )))
        },
    );
    rig.stop_wineserver();
    report.step(STAGE, "clippy (stand-in msvc, probe gnu)", || {
        clippy(toolchain)
    });
}

/// The stand-in with the driver's clippy settings; the probe for gnu with all targets.
fn clippy(toolchain: &Toolchain) -> Result<()> {
    verify_clippy(toolchain)?;
    run(toolchain
        .cargo(&repo_root().join(STANDIN_DIR))
        .args(["clippy", "--package", STANDIN_PACKAGE, "--target", MSVC])
        .args(BUILD_STD_CORE)
        .arg("--target-dir")
        .arg(units_target_dir(MSVC, false, Units::Check))
        .args(["--", "-D", "warnings"]))?;
    run(toolchain
        .cargo(&repo_root())
        .args(["clippy", "--target", GNU, "-Zbuild-std"])
        .arg("--target-dir")
        .arg(units_target_dir(GNU, true, Units::Check))
        .args([
            "--package",
            PROBE_PACKAGE,
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))
}

fn build(toolchain: &Toolchain) -> Result<Rig> {
    let sys = link_sys(toolchain, true)?;
    // The stand-in: the driver's settings (core only, same target dir, so the core build is
    // shared), linked as a native DLL.
    let workspace = repo_root().join(STANDIN_DIR);
    let mut link_args = vec![format!("-Clinker={}", toolchain.llvm("lld-link").display())];
    link_args.extend(STANDIN_LINK_FLAGS.iter().map(|f| format!("-Clink-arg={f}")));
    let standin = link(
        toolchain,
        &RustcLink {
            workspace: &workspace,
            final_src: &workspace.join("src/lib.rs"),
            package: STANDIN_PACKAGE,
            product: Product::Lib,
            target: MSVC,
            build_std: BUILD_STD_CORE,
            sdkroot: None,
            link_args: &link_args,
            release: true,
        },
    )?;
    // The probe: a gnu program in the wine tests' std dir (shared std build).
    let dir = build_target_dir(GNU);
    let mut cmd = toolchain.cargo(&repo_root());
    cmd.args(["build", "--target", GNU]);
    configure(toolchain, &mut cmd, GNU, &dir)?;
    // hardmuted.exe and hardmute.exe too: the daemon row runs the real programs.
    cmd.args(["--package", PROBE_PACKAGE, "--bin", PROBE_BIN])
        .args(["--package", "hardmuted", "--bin", "hardmuted"])
        .args(["--package", "hardmute-cli"]);
    run(&mut cmd)?;
    let probe = dir.join(GNU).join("debug").join(format!("{PROBE_BIN}.exe"));
    ensure!(
        probe.exists(),
        "{} is missing after the build",
        probe.display()
    );

    let prefix = prepare_prefix_at(PREFIX)?;
    let logs = cache_root().join("wine/kernel-logs");
    let _ = fs::remove_dir_all(&logs);
    fs::create_dir_all(&logs)?;
    let rig = Rig {
        sys,
        prefix,
        probe,
        logs,
    };
    // A wineserver left by an interrupted run of this prefix (ours) goes first; then one that
    // stays up between the probe runs (otherwise it exits a few seconds after the last wine
    // process and takes winedevice, and the loaded driver, with it).
    rig.stop_wineserver();
    rig.start_wineserver()?;
    let drivers = rig.prefix.join(DRIVERS);
    fs::copy(&rig.sys, drivers.join("hardmute.sys"))?;
    fs::copy(&standin, drivers.join("portcls.sys"))?;
    let _ = fs::remove_file(rig.prefix.join(STANDIN_LOG));
    Ok(rig)
}

/// Wine maps the Unix root to drive Z:.
fn unix_to_wine(path: &std::path::Path) -> String {
    format!("Z:{}", path.display()).replace('/', "\\")
}

/// What a probe run printed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ProbeOutput {
    pub passed: Vec<String>,
    pub failed: Vec<String>,
    /// Facts about Wine the probe reports without counting them (e.g. no DACL to read back).
    pub notes: Vec<String>,
}

/// `ok <check>: ...` / `FAIL <check>: ...` / `note <topic>: ...` lines.
pub fn parse_probe(stdout: &str) -> ProbeOutput {
    let mut out = ProbeOutput::default();
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix("ok ") {
            out.passed.push(rest.to_owned());
        } else if let Some(rest) = line.strip_prefix("FAIL ") {
            out.failed.push(rest.to_owned());
        } else if let Some(rest) = line.strip_prefix("note ") {
            out.notes.push(rest.to_owned());
        }
    }
    out
}

/// The driver's `DbgPrintEx` lines in Wine's debug output (`warn:debugstr:...
/// 0000004f:00000008: hardmute: ...`), from `hardmute: ` on.
pub fn driver_log_lines(wine_stderr: &str) -> Vec<String> {
    wine_stderr
        .lines()
        .filter(|l| l.contains(":debugstr:"))
        .filter_map(|l| l.find("hardmute: ").map(|i| l[i..].trim_end().to_owned()))
        .collect()
}

/// The stand-in's `hook applied:` lines (the bridge ring's MDL mapping replaced).
pub fn hook_lines(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| l.strip_prefix("hook applied: "))
        .map(|l| l.trim_end().to_owned())
        .collect()
}

/// Gap-fill lines of the stand-in's log (what Wine lacked that the driver imports).
pub fn filled_gaps(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| l.strip_prefix("gap filled: "))
        .filter_map(|l| l.split(" (").next())
        .map(str::to_owned)
        .collect()
}

impl Rig {
    fn wine_log(&self) -> PathBuf {
        self.logs.join("wine-stderr.log")
    }

    fn standin_log(&self) -> String {
        fs::read_to_string(self.prefix.join(STANDIN_LOG)).unwrap_or_default()
    }

    /// Runs the probe under wine with a deadline; returns its stdout.
    fn probe(&self, args: &[&str]) -> Result<(bool, String)> {
        let mut cmd = Command::new(WINE);
        cmd.arg(&self.probe).args(args);
        wine_env(&mut cmd, &self.prefix);
        cmd.env("WINEDEBUG", WINEDEBUG);
        let stderr = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.wine_log())?;
        cmd.stdout(Stdio::piped()).stderr(stderr);
        eprintln!("+ {}", describe(&cmd));
        let mut child = cmd.spawn().context("starting wine")?;
        let stdout = child.stdout.take().expect("piped stdout");
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                eprintln!("  probe: {line}");
                text.push_str(&line);
                text.push('\n');
            }
            text
        });
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break Some(status);
            }
            if start.elapsed() > STEP_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        if status.is_none() {
            // The probe (or winedevice under it) hangs: end this prefix's processes so the
            // reader sees EOF.
            self.kill_wineserver();
        }
        let text = reader.join().unwrap_or_default();
        match status {
            Some(s) => Ok((s.success(), text)),
            None => bail!(
                "wine-kernel-probe {} timed out after {}s; last probe line: {:?}{}",
                args.join(" "),
                STEP_TIMEOUT.as_secs(),
                text.lines().last().unwrap_or("(none)"),
                self.diagnostics()
            ),
        }
    }

    /// The stand-in's log and the tail of Wine's stderr, for a failure message.
    fn diagnostics(&self) -> String {
        let standin = self.standin_log();
        let wine = fs::read_to_string(self.wine_log()).unwrap_or_default();
        let tail: Vec<&str> = wine
            .lines()
            .filter(|l| !l.trim().is_empty())
            .rev()
            .take(25)
            .collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!(
            "\n--- stand-in portcls.sys log ({}) ---\n{}\n--- last lines of wine's stderr ({}) ---\n{}",
            self.prefix.join(STANDIN_LOG).display(),
            standin.trim_end(),
            self.wine_log().display(),
            tail.join("\n")
        )
    }

    /// Runs one probe subcommand; every check must pass.
    fn probe_step(&self, what: &str, arg: &str) -> Result<String> {
        self.probe_step_args(what, &[arg])
    }

    fn probe_step_args(&self, what: &str, args: &[&str]) -> Result<String> {
        let (success, stdout) = self.probe(args)?;
        let out = parse_probe(&stdout);
        if !out.failed.is_empty() || !success || out.passed.is_empty() {
            bail!(
                "{what}: {} failed: {}{}",
                out.failed.len(),
                if out.failed.is_empty() {
                    format!(
                        "the probe exited unsuccessfully with {} checks passed",
                        out.passed.len()
                    )
                } else {
                    out.failed.join("; ")
                },
                self.diagnostics()
            );
        }
        let notes: Vec<&str> = out
            .notes
            .iter()
            .map(|n| n.split(':').next().unwrap_or(n))
            .collect();
        Ok(if notes.is_empty() {
            format!("{} checks passed", out.passed.len())
        } else {
            format!(
                "{} checks passed; Wine cannot show: {}",
                out.passed.len(),
                notes.join(", ")
            )
        })
    }

    fn load(&self) -> Result<String> {
        self.probe_step_args("load", &["load", SYS_WINDOWS_PATH])
            .map_err(|e| {
                // Name the first call that broke as the stand-in saw it, if the probe could not.
                e.context(format!(
                    "loading {SYS_WINDOWS_PATH} as a kernel service under Wine"
                ))
            })?;
        let log = self.standin_log();
        ensure!(
            log.contains("PcInitializeAdapterDriver"),
            "the service started but the driver never called PcInitializeAdapterDriver{}",
            self.diagnostics()
        );
        let gaps = filled_gaps(&log);
        // The driver's log channel: DbgPrintEx reaches Wine's debug output.
        let wine = fs::read_to_string(self.wine_log()).unwrap_or_default();
        let logged = driver_log_lines(&wine);
        ensure!(
            logged.iter().any(|l| l.starts_with(DRIVER_ENTRY_LOG)),
            "DriverEntry's DbgPrintEx line ({DRIVER_ENTRY_LOG:?}) is not in Wine's debug output (warn+debugstr); driver lines seen: {logged:?}{}",
            self.diagnostics()
        );
        Ok(format!(
            "DriverEntry ran and logged through DbgPrintEx ({} driver lines); Wine gaps filled: {}",
            logged.len(),
            gaps.join(" ")
        ))
    }

    fn unload(&self) -> Result<String> {
        let note = self.probe_step("unload", "unload")?;
        let shipped = fs::read(&self.sys)?;
        let loaded = fs::read(self.prefix.join(DRIVERS).join("hardmute.sys"))?;
        ensure!(
            shipped == loaded,
            "the hardmute.sys in the prefix differs from the linked {}",
            self.sys.display()
        );
        Ok(format!("{note}; the loaded .sys equals the shipped file"))
    }

    /// `wineserver -p`: persistent until `-k` (stop_wineserver), for this prefix only.
    fn start_wineserver(&self) -> Result<()> {
        let mut cmd = Command::new(WINESERVER);
        cmd.arg("-p");
        wine_env(&mut cmd, &self.prefix);
        run(&mut cmd)
    }

    /// `wineserver -k` for this prefix only (its processes were all started here).
    fn kill_wineserver(&self) {
        let mut cmd = Command::new(WINESERVER);
        cmd.arg("-k");
        wine_env(&mut cmd, &self.prefix);
        let _ = cmd.status();
    }

    /// Ends this prefix's wineserver and its processes (winedevice, services): the rows have
    /// stopped the driver's service already.
    fn stop_wineserver(&self) {
        self.kill_wineserver();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_lines_are_sorted_into_passed_and_failed() {
        let out = parse_probe(
            "ok load: StartServiceW: DriverEntry returned success\nnoise\nFAIL DACL: Wine reports \"\"\n  ok indented is not a check\nnote DACL: none\nprobe result: 1 passed, 1 failed\n",
        );
        assert_eq!(out.notes, ["DACL: none"]);
        assert_eq!(
            out.passed,
            ["load: StartServiceW: DriverEntry returned success"]
        );
        assert_eq!(out.failed, ["DACL: Wine reports \"\""]);
        assert_eq!(parse_probe(""), ProbeOutput::default());
    }

    #[test]
    fn filled_gaps_are_read_from_the_standin_log() {
        let log = "PcInitializeAdapterDriver: driver image 0x180000000 (282624 bytes)\r\n\
gap filled: ntoskrnl.exe!ExAllocateTimer (absent from Wine 8.0): import slot 0x1 -> stand-in 0x2\r\n\
gap: hal.dll!KeStallExecutionProcessor is exported by this Wine (assumed absent): left alone\r\n\
gap filled: hal.dll!KeStallExecutionProcessor (a stub in Wine 8.0): import slot 0x3 -> stand-in 0x4\r\n";
        assert_eq!(
            filled_gaps(log),
            [
                "ntoskrnl.exe!ExAllocateTimer",
                "hal.dll!KeStallExecutionProcessor"
            ]
        );
    }

    #[test]
    fn driver_lines_and_hook_lines_are_found() {
        let wine = "0024:warn:debugstr:vDbgPrintExWithPrefix 0000004f:00000008: hardmute: DriverEntry: HardMute virtual microphone driver 0.1.0\n\
0024:fixme:ntoskrnl:x hardmute: not a debug line\n\
0024:warn:debugstr:vDbgPrintExWithPrefix 00000000:00000001: other driver\n";
        let lines = driver_log_lines(wine);
        assert_eq!(
            lines,
            ["hardmute: DriverEntry: HardMute virtual microphone driver 0.1.0"]
        );
        assert!(lines[0].starts_with(DRIVER_ENTRY_LOG));
        assert!(driver_log_lines("").is_empty());
        let log = "hook installed: x\r\nhook applied: REGISTER_BRIDGE #1: MDL y\r\n";
        assert_eq!(hook_lines(log), ["REGISTER_BRIDGE #1: MDL y"]);
        assert!(hook_lines("hook installed: x").is_empty());
    }

    #[test]
    fn the_rig_sources_exist() {
        assert!(repo_root().join(STANDIN_DIR).join("src/lib.rs").exists());
        assert!(repo_root()
            .join("tests/wine-kernel/probe/src/probe.rs")
            .exists());
        assert!(STANDIN_LOG.ends_with("hardmute-portcls.log"));
        assert_eq!(
            unix_to_wine(std::path::Path::new("/opt/x/hardmuted.exe")),
            r"Z:\opt\x\hardmuted.exe"
        );
    }
}
