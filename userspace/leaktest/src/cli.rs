//! Command-line entry shared by the `hardmute-leaktest` binary and `hardmute leak-test`.

use crate::backend::{Backend, Simulated};
use crate::{report, run, RunConfig, Verdict};
use clap::Parser;
use std::path::PathBuf;

/// The leak test's command line (`hardmute leak-test ...` or `hardmute-leak-test ...`).
#[derive(Parser, Debug)]
#[command(
    name = "hardmute leak-test",
    bin_name = "hardmute leak-test",
    version,
    about = "Run the \"Are You Really Muted?\" (PETS 2022) attack against hard mute and write a report.",
    long_about = "Plays synthetic household activities into the microphone path and runs the attack of \
\"Are You Really Muted?\" (PETS 2022) against what apps receive: (a) app-level mute, \
(b) HardMute hard mute, and two positive controls that must leak ((c) a -60 dB gate, \
(d) input-dependent processing before the gate).",
    after_help = EXIT_STATUS
)]
pub struct Args {
    /// Write report.md and the PNG plots there.
    #[arg(long, value_name = "DIR", default_value = "leak-test-report")]
    pub out: PathBuf,
    /// The quick run (7 activities x 8 clips x 6 s); default is the full run.
    #[arg(long)]
    pub short: bool,
    /// simulated (any OS) or linux (a running private PipeWire with HardMute Microphone; see
    /// the crate docs).
    #[arg(long, value_name = "B", default_value = "simulated", value_parser = ["simulated", "linux"])]
    pub backend: String,
    /// Change the synthetic room.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Clips per activity.
    #[arg(long, value_name = "N")]
    pub clips: Option<usize>,
    /// Seconds per clip.
    #[arg(long, value_name = "S")]
    pub secs: Option<f32>,
    /// False-alarm level of each statistical check of (b) (default 0.01): the chance interval
    /// is at 1-A and the timing test at A; smaller A needs more permutations, which are raised
    /// to match. Bit-identity is exact.
    #[arg(long, value_name = "A")]
    pub alpha: Option<f64>,
    /// Classify per-minute aggregates of the 1 s reports, like the paper (needs --secs 60 or
    /// more).
    #[arg(long)]
    pub per_minute: bool,
    /// Also write a short summary (docs/leak-test.md) linking the plots.
    #[arg(long, value_name = "FILE")]
    pub summary: Option<PathBuf>,
    /// macOS/Windows with the installed driver: hardmuted's source is a loopback device
    /// (BlackHole 2ch, VB-CABLE); the clips are played to its output (--play-to), (a) records
    /// its input (--mic) directly, (b) records --hardmute-mic. HardMute must be hard-muted
    /// (the daemon is asked before and after (b)).
    #[arg(long, requires_all = ["play_to", "mic"])]
    pub device_mode: bool,
    /// With --device-mode: the loopback device's output the clips are played to.
    #[arg(long, value_name = "OUTPUT", requires = "device_mode")]
    pub play_to: Option<String>,
    /// With --device-mode: the loopback device's input, recorded directly for (a).
    #[arg(long, value_name = "INPUT", requires = "device_mode")]
    pub mic: Option<String>,
    /// With --device-mode: the HardMute input recorded for (b).
    #[arg(long, value_name = "NAME", default_value = crate::backend::device::HARDMUTE_MIC)]
    pub hardmute_mic: String,
}

const EXIT_STATUS: &str = "\
Exit status:
  0  no leak, and the controls were detected
  1  HardMute leaked (evidence printed and in the report)
  2  the test had no power (a control was not detected)
  3  usage or backend error";

/// Runs the leak test with `args` (without the program name); returns the exit status.
pub fn main(args: &[String]) -> i32 {
    let argv = std::iter::once("hardmute leak-test".to_owned()).chain(args.iter().cloned());
    let parsed = match Args::try_parse_from(argv) {
        Ok(parsed) => parsed,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 3 } else { 0 };
        }
    };
    match run_args(args, parsed) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hardmute leak-test: {e}");
            3
        }
    }
}

/// The run's configuration from the parsed arguments (the numeric overrides apply on top of
/// --short or the full run).
pub fn config(args: &Args) -> Result<RunConfig, String> {
    let mut cfg = if args.short {
        RunConfig::short()
    } else {
        RunConfig::full()
    };
    if let Some(seed) = args.seed {
        cfg.seed = seed;
    }
    if let Some(clips) = args.clips {
        cfg.clips_per_class = clips;
    }
    if let Some(secs) = args.secs {
        if !(secs.is_finite() && secs > 0.0) {
            return Err(format!("bad value for --secs: {secs} (must be > 0)"));
        }
        cfg.clip_secs = secs;
    }
    if let Some(alpha) = args.alpha {
        cfg.set_alpha(alpha)?;
    }
    if cfg.clips_per_class < cfg.folds {
        return Err(format!("need at least {} clips per activity", cfg.folds));
    }
    if args.per_minute {
        let windows_per_minute = (60.0 / cfg.telemetry.window_secs) as usize;
        if (cfg.clip_secs as f64) < 60.0 {
            return Err("--per-minute needs --secs 60 or more".into());
        }
        cfg.aggregate_windows = Some(windows_per_minute);
    }
    Ok(cfg)
}

fn run_args(raw: &[String], args: Args) -> Result<i32, String> {
    let cfg = config(&args)?;
    if args.device_mode {
        let setup = crate::backend::device::DeviceSetup {
            play_to: args.play_to.clone().unwrap_or_default(),
            mic: args.mic.clone().unwrap_or_default(),
            hardmute_mic: args.hardmute_mic.clone(),
        };
        return finish_run(raw, &cfg, &args.out, args.summary, device_backend(setup)?);
    }
    let backend: Box<dyn Backend> = match args.backend.as_str() {
        "simulated" => Box::new(Simulated::new(cfg.sim)),
        #[cfg(target_os = "linux")]
        "linux" => Box::new(crate::backend::linux::PipeWire::from_env()?),
        other => return Err(format!("backend {other} is not available on this OS")),
    };
    finish_run(raw, &cfg, &args.out, args.summary, backend)
}

/// Asks the running daemon for the hard-mute state.
fn daemon_mute_probe() -> crate::backend::device::MuteProbe {
    Box::new(|| {
        let mut client = hardmute_ipc::Client::connect_default().map_err(|e| format!("{e:?}"))?;
        Ok(client.status().map_err(|e| format!("{e:?}"))?.muted)
    })
}

#[cfg(any(target_os = "macos", windows, feature = "device-alsa"))]
fn device_backend(setup: crate::backend::device::DeviceSetup) -> Result<Box<dyn Backend>, String> {
    use crate::backend::device::{cpal_host::CpalDevices, DeviceBackend};
    Ok(Box::new(DeviceBackend::new(
        CpalDevices::new(),
        setup,
        daemon_mute_probe(),
    )?))
}

#[cfg(not(any(target_os = "macos", windows, feature = "device-alsa")))]
fn device_backend(_: crate::backend::device::DeviceSetup) -> Result<Box<dyn Backend>, String> {
    let _ = daemon_mute_probe;
    Err(
        "--device-mode needs macOS or Windows (with the HardMute driver); on Linux use \
         --backend linux"
            .into(),
    )
}

fn finish_run(
    args: &[String],
    cfg: &RunConfig,
    out: &std::path::Path,
    summary: Option<PathBuf>,
    mut backend: Box<dyn Backend>,
) -> Result<i32, String> {
    eprintln!(
        "leak test: {} activities x {} clips x {} s, backend {}",
        cfg.classes(),
        cfg.clips_per_class,
        cfg.clip_secs,
        backend.name()
    );
    let started = std::time::Instant::now();
    let outcome = run(cfg, backend.as_mut())?;
    let report_path =
        report::write(&outcome, out).map_err(|e| format!("writing the report: {e}"))?;
    if let Some(s) = summary {
        let command = format!("hardmute leak-test {}", args.join(" "));
        report::write_summary(&outcome, out, &s, &command)
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("hardmute leak-test").chain(args.iter().copied()))
    }

    #[test]
    fn command_line_definition_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn overrides_apply_on_top_of_short_wherever_they_appear() {
        let cfg = config(&parse(&["--clips", "9", "--short", "--seed", "7"]).unwrap()).unwrap();
        let short = RunConfig::short();
        assert_eq!(cfg.clips_per_class, 9);
        assert_eq!(cfg.seed, 7);
        assert_eq!(cfg.clip_secs, short.clip_secs);
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(parse(&["--clips", "many"]).is_err());
        assert!(parse(&["--backend", "pulse"]).is_err());
        assert!(parse(&["--frobnicate"]).is_err());
        assert!(config(&parse(&["--short", "--clips", "1"]).unwrap()).is_err());
        assert!(config(&parse(&["--short", "--secs", "0"]).unwrap()).is_err());
        assert!(config(&parse(&["--short", "--per-minute"]).unwrap()).is_err());
        assert!(config(&parse(&["--short", "--alpha", "2"]).unwrap()).is_err());
    }

    #[test]
    fn device_mode_needs_both_devices_and_they_need_device_mode() {
        assert!(parse(&["--device-mode", "--play-to", "BlackHole 2ch"]).is_err());
        assert!(parse(&["--mic", "BlackHole 2ch"]).is_err());
        let a = parse(&["--device-mode", "--play-to", "A", "--mic", "B"]).unwrap();
        assert_eq!(
            (a.play_to.as_deref(), a.mic.as_deref()),
            (Some("A"), Some("B"))
        );
        assert_eq!(a.hardmute_mic, crate::backend::device::HARDMUTE_MIC);
    }

    #[test]
    fn usage_errors_exit_3_and_help_exits_0() {
        assert_eq!(main(&["--frobnicate".to_owned()]), 3);
        assert_eq!(main(&["--help".to_owned()]), 0);
        assert_eq!(
            main(&["--short".to_owned(), "--clips".to_owned(), "1".to_owned()]),
            3
        );
    }

    #[test]
    fn help_lists_the_exit_status() {
        let help = Args::command().render_long_help().to_string();
        for line in [
            "0  no leak",
            "1  HardMute leaked",
            "2  the test had no power",
            "3  usage",
        ] {
            assert!(help.contains(line), "{line:?} missing from --help");
        }
    }
}
