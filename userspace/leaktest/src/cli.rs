//! Command-line entry shared by the `hardmute-leaktest` binary and `hardmute leak-test`.

use crate::backend::{Backend, Simulated};
use crate::{report, run, RunConfig, Verdict};
use std::path::PathBuf;

pub const USAGE: &str = "\
usage: hardmute leak-test [--out DIR] [--short] [--backend simulated|linux] [--seed N]
                          [--clips N] [--secs S] [--alpha A] [--per-minute] [--summary FILE]

Plays synthetic household activities into the microphone path and runs the attack of
\"Are You Really Muted?\" (PETS 2022) against what apps receive: (a) app-level mute,
(b) HardMute hard mute, and two positive controls that must leak ((c) a -60 dB gate,
(d) input-dependent processing before the gate).

  --out DIR        write report.md and the PNG plots there (default: leak-test-report)
  --short          the quick run (7 activities x 8 clips x 6 s); default is the full run
  --backend B      simulated (default, any OS) or linux (a running private PipeWire with
                   HardMute Microphone; see the crate docs)
  --seed N         change the synthetic room
  --clips N        clips per activity;  --secs S  seconds per clip
  --alpha A        false-alarm level of each statistical check of (b) (default 0.01): the
                   chance interval is at 1-A and the timing test at A; smaller A needs
                   more permutations, which are raised to match. Bit-identity is exact.
  --per-minute     classify per-minute aggregates of the 1 s reports, like the paper
                   (needs clips of at least 60 s)
  --summary FILE   also write a short summary (docs/leak-test.md) linking the plots

Exit status: 0 no leak and the controls were detected; 1 HardMute leaked (evidence printed
and in the report); 2 the test had no power (a control was not detected); 3 usage or
backend error.";

pub fn main(args: &[String]) -> i32 {
    match parse_and_run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hardmute leak-test: {e}");
            3
        }
    }
}

fn parse_and_run(args: &[String]) -> Result<i32, String> {
    let mut cfg = RunConfig::full();
    let mut out = PathBuf::from("leak-test-report");
    let mut summary: Option<PathBuf> = None;
    let mut backend_name = "simulated".to_string();
    let mut per_minute = false;
    let mut it = args.iter();
    let mut overrides: Vec<(String, String)> = Vec::new();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or(format!("{a} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(0);
            }
            "--short" => cfg = RunConfig::short(),
            "--out" => out = PathBuf::from(value()?),
            "--summary" => summary = Some(PathBuf::from(value()?)),
            "--backend" => backend_name = value()?,
            "--per-minute" => per_minute = true,
            "--seed" | "--clips" | "--secs" | "--alpha" => overrides.push((a.clone(), value()?)),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    // Applied after --short wherever it appeared.
    for (k, v) in overrides {
        let bad = |e: &dyn std::fmt::Display| format!("bad value for {k}: {v} ({e})");
        match k.as_str() {
            "--seed" => cfg.seed = v.parse().map_err(|e| bad(&e))?,
            "--clips" => cfg.clips_per_class = v.parse().map_err(|e| bad(&e))?,
            "--alpha" => cfg.set_alpha(v.parse().map_err(|e| bad(&e))?)?,
            _ => cfg.clip_secs = v.parse().map_err(|e| bad(&e))?,
        }
    }
    if cfg.clips_per_class < cfg.folds {
        return Err(format!("need at least {} clips per activity", cfg.folds));
    }
    if per_minute {
        let windows_per_minute = (60.0 / cfg.telemetry.window_secs) as usize;
        if (cfg.clip_secs as f64) < 60.0 {
            return Err("--per-minute needs --secs 60 or more".into());
        }
        cfg.aggregate_windows = Some(windows_per_minute);
    }
    let mut backend: Box<dyn Backend> = match backend_name.as_str() {
        "simulated" => Box::new(Simulated::new(cfg.sim)),
        #[cfg(target_os = "linux")]
        "linux" => Box::new(crate::backend::linux::PipeWire::from_env()?),
        other => return Err(format!("unknown or unavailable backend {other}")),
    };
    eprintln!(
        "leak test: {} activities x {} clips x {} s, backend {}",
        cfg.classes(),
        cfg.clips_per_class,
        cfg.clip_secs,
        backend.name()
    );
    let started = std::time::Instant::now();
    let outcome = run(&cfg, backend.as_mut())?;
    let report_path =
        report::write(&outcome, &out).map_err(|e| format!("writing the report: {e}"))?;
    if let Some(s) = summary {
        let command = format!("hardmute leak-test {}", args.join(" "));
        report::write_summary(&outcome, &out, &s, &command)
            .map_err(|e| format!("writing the summary: {e}"))?;
    }
    print!("{}", report::console(&outcome));
    println!(
        "report: {} ({:.1} s)",
        report_path.display(),
        started.elapsed().as_secs_f64()
    );
    let verdict = outcome.verdict();
    match verdict {
        Verdict::Pass => println!(
            "PASS: hard mute leaked nothing the attack could see; the controls were detected."
        ),
        Verdict::Leak => println!("FAIL: HardMute leaked (evidence above)."),
        Verdict::NoPower => {
            println!("INCONCLUSIVE: a control was not detected, so the test proves nothing.")
        }
    }
    Ok(verdict.exit_code())
}
