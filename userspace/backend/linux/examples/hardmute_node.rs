//! A bare controller of the in-server gate, without hardmuted: commands on stdin, one per
//! line, answering one line each (the e2e rig's `HM_IMPL=node`):
//!   mute | unmute            -> "ok muted" / "ok unmuted" once the realtime path has it
//!   status                   -> "status muted=.. source=.. capture_links=.. feed_links=.."
//!   listeners                -> one "listener ..." line per client, then "end"
//!   source NAME | source -   -> "ok" or "error <message listing sources>"
//!   quit
//! Options: --source NAME, --release-on-mute, --state-file PATH (persisted mute state;
//! missing file = muted, as a fresh install).
use std::io::{BufRead, Write};

use hardmute_backend_linux::{ChangeSource, Config, Controller};

struct StderrLog;
impl log::Log for StderrLog {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level()
            <= if std::env::var_os("HM_DEBUG").is_some() {
                log::Level::Debug
            } else {
                log::Level::Info
            }
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            eprintln!("[{}] {}", r.level(), r.args());
        }
    }
    fn flush(&self) {}
}
static LOGGER: StderrLog = StderrLog;

/// The gate's counters: (cycle_seq, delivered, zeroed, underruns); zeros before its page is found.
fn counters(mic: &Controller) -> (u64, u64, u64, u64) {
    mic.snapshot()
        .map(|c| {
            (
                c.cycle_seq,
                c.frames_delivered,
                c.frames_zeroed,
                c.underruns,
            )
        })
        .unwrap_or((0, 0, 0, 0))
}

fn main() {
    let _ = log::set_logger(&LOGGER).map(|()| log::set_max_level(log::LevelFilter::Debug));
    let mut config = Config::default();
    let mut state_file: Option<std::path::PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--source" => config.source = args.next(),
            "--release-on-mute" => config.release_on_mute = true,
            "--state-file" => state_file = args.next().map(Into::into),
            other => {
                eprintln!("unknown option {other}");
                std::process::exit(2);
            }
        }
    }
    config.initially_muted = match &state_file {
        Some(p) => std::fs::read_to_string(p)
            .map(|s| s.trim() != "unmuted")
            .unwrap_or(true),
        None => true,
    };
    let persist = |muted: bool| {
        if let Some(p) = &state_file {
            let tmp = p.with_extension("tmp");
            let _ = std::fs::write(&tmp, if muted { "muted\n" } else { "unmuted\n" });
            let _ = std::fs::rename(&tmp, p);
        }
    };
    let mic = match Controller::start(config) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let out = std::io::stdout();
    let say = |line: String| {
        let mut o = out.lock();
        let _ = writeln!(o, "{line}");
        let _ = o.flush();
    };
    let st = mic.status();
    if let Some(e) = &st.last_error {
        say(format!("warning {e}"));
    }
    say(format!("ready muted={}", mic.is_muted()));
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some(cmd @ ("mute" | "unmute")), _) => {
                let muted = cmd == "mute";
                // Persist first: a crash right after the ack must come back in this state.
                persist(muted);
                match mic.set_hard_mute(muted, ChangeSource::Cli) {
                    Ok(()) => {
                        // Counters at the acknowledgement, for the mute-reaction measurement.
                        let (_, delivered, zeroed, _) = counters(&mic);
                        say(format!(
                            "ok {} delivered={delivered} zeroed={zeroed}",
                            if muted { "muted" } else { "unmuted" },
                        ))
                    }
                    Err(e) => say(format!("error {e}")),
                }
            }
            (Some("status"), _) => {
                let s = mic.status();
                say(format!(
                    "status muted={} source={} capture_links={} running={} hardmute_node={:?} page={} connected={}",
                    mic.is_muted(),
                    s.source_linked.as_deref().unwrap_or("-"),
                    s.capture_links,
                    s.physical_running,
                    s.hardmute_node,
                    s.page.as_deref().unwrap_or("-"),
                    s.connected
                ));
            }
            (Some("stats"), _) => {
                let (seq, delivered, zeroed, underruns) = counters(&mic);
                say(format!(
                    "stats cycles={} delivered={delivered} zeroed={zeroed} underruns={underruns}",
                    seq / 2
                ));
            }
            (Some("listeners"), _) => {
                for l in mic.listeners() {
                    say(format!(
                        "listener node={} captures={:?} app={} pid={} binary={}",
                        l.node_name,
                        l.captures,
                        l.app.app_name.as_deref().unwrap_or("?"),
                        l.app
                            .pid
                            .map(|p| p.to_string())
                            .unwrap_or_else(|| "?".into()),
                        l.app.binary.as_deref().unwrap_or("?")
                    ));
                }
                say("end".into());
            }
            (Some("source"), name) => {
                let name = name.filter(|n| *n != "-").map(str::to_owned);
                match mic.select_source(name) {
                    Ok(()) => say("ok".into()),
                    Err(e) => say(format!("error {e}")),
                }
            }
            (Some("quit"), _) => break,
            _ => say(format!("error unknown command {line:?}")),
        }
    }
}
