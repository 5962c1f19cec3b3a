//! The real Linux backend: a running PipeWire with the fake physical mic and HardMute
//! Microphone. The clips are played into the mic with `pw-cat` and a real client, `pw-record`,
//! records what an app receives; arrival times are the wall-clock times at which its output
//! reaches this process.
//!
//! It expects the graph to be set up already (the e2e script does it, see
//! `userspace/leaktest/scripts/linux-leak-test.sh`): `PIPEWIRE_REMOTE`/`XDG_RUNTIME_DIR` point at
//! the private daemon, a session manager links `pw-record` to its `--target`, HardMute is
//! hard-muted. Names can be changed through the environment:
//! - `HARDMUTE_LEAKTEST_MIC` (default `fake-mic`): the physical mic node; condition (a) records it
//!   directly, like an app whose own mute button gates nothing;
//! - `HARDMUTE_LEAKTEST_MIC_INPUT` (default `<mic>:input_MONO`): where the player is linked;
//! - `HARDMUTE_LEAKTEST_TARGET` (default `hardmute_mic`): HardMute Microphone, condition (b).
//!
//! All clips of a condition are played back to back in one stream, in a shuffled order, so
//! slow drifts of the machine's load are spread over every activity instead of following one.

use super::{concatenate_shuffled, playback_start, split_by_clip, Arrival, Backend};
use crate::activity::Clip;
use crate::sim::{AppCapture, Condition};
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PLAYER_NODE: &str = "hardmute-leaktest-mic-feed";

pub struct PipeWire {
    mic: String,
    mic_input: String,
    target: String,
    rate: u32,
}

impl PipeWire {
    pub fn from_env() -> Result<Self, String> {
        let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
        let mic = env("HARDMUTE_LEAKTEST_MIC", "fake-mic");
        let mic_input = env("HARDMUTE_LEAKTEST_MIC_INPUT", &format!("{mic}:input_MONO"));
        let target = env("HARDMUTE_LEAKTEST_TARGET", "hardmute_mic");
        let info = Command::new("pw-cli")
            .args(["info", "0"])
            .output()
            .map_err(|e| format!("pw-cli not runnable ({e}); install pipewire-bin"))?;
        if !info.status.success() {
            return Err("no PipeWire daemon reachable (pw-cli info 0 failed)".into());
        }
        Ok(PipeWire {
            mic,
            mic_input,
            target,
            rate: 48_000,
        })
    }
}

/// A child process that is killed (by its own pid) when dropped.
struct Owned(Child);

impl Drop for Owned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(timeout: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn pw_link_list() -> String {
    Command::new("pw-link")
        .arg("-l")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// True when some port of `source` is linked to a port of `sink` (both node names). Parses
/// `pw-link -l`: an output port line `node:port` followed by `  |-> node:port` lines.
fn linked_from(source: &str, sink: &str) -> bool {
    let mut in_source = false;
    for line in pw_link_list().lines() {
        if !line.starts_with(' ') {
            in_source = line.starts_with(&format!("{source}:"));
        } else if in_source && line.trim_start().starts_with(&format!("|-> {sink}:")) {
            return true;
        }
    }
    false
}

/// The nodes linked into `sink`'s input ports (`  |<- node:port` lines under `sink:port`).
fn sources_of(sink: &str) -> Vec<String> {
    let mut in_sink = false;
    let mut out = Vec::new();
    for line in pw_link_list().lines() {
        if !line.starts_with(' ') {
            in_sink = line.starts_with(&format!("{sink}:"));
        } else if let Some(src) = line.trim_start().strip_prefix("|<- ").filter(|_| in_sink) {
            let node = src.rsplit_once(':').map_or(src, |(n, _)| n).to_string();
            if !out.contains(&node) {
                out.push(node);
            }
        }
    }
    out
}

fn has_output_port(port: &str) -> bool {
    Command::new("pw-link")
        .arg("-o")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == port)
        })
        .unwrap_or(false)
}

impl PipeWire {
    fn record_concatenated(
        &self,
        target: &str,
        app_node: &str,
        playback: Vec<f32>,
    ) -> Result<(Vec<f32>, Vec<Arrival>, Duration), String> {
        let rate = self.rate.to_string();
        let mut rec = Owned(
            Command::new("pw-record")
                .args(["--target", target, "--rate", &rate, "--channels", "1", "--format", "f32"])
                .args(["--latency", "10ms", "-P"])
                .arg(format!(
                    "{{ node.name = {app_node} application.name = {app_node} node.dont-reconnect = true }}"
                ))
                .arg("-")
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("pw-record: {e}"))?,
        );
        let mut out = rec.0.stdout.take().ok_or("pw-record has no stdout")?;
        let t0 = Instant::now();
        let reader = std::thread::spawn(move || {
            let mut bytes: Vec<u8> = Vec::new();
            let mut arrivals = Vec::new();
            let mut buf = vec![0u8; 1 << 16];
            loop {
                match out.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let first = bytes.len() / 4;
                        bytes.extend_from_slice(&buf[..n]);
                        arrivals.push(Arrival {
                            at: t0.elapsed(),
                            first_sample: first,
                            samples: bytes.len() / 4 - first,
                        });
                    }
                }
            }
            let samples: Vec<f32> = bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (samples, arrivals)
        });
        // The recorder must be linked to the node we asked for and to nothing else: a session
        // manager that "restores" an earlier target would make us record the wrong node.
        if !wait_for(Duration::from_secs(10), || linked_from(target, app_node)) {
            return Err(format!(
                "pw-record was never linked to {target} (is a session manager running?)"
            ));
        }
        let sources = sources_of(app_node);
        if sources.iter().any(|s| s != target) {
            return Err(format!(
                "pw-record is linked to {sources:?}, not only to {target}"
            ));
        }
        // Let the recorder settle, then start the fake mic's feed.
        std::thread::sleep(Duration::from_millis(500));
        let mut player = Owned(
            Command::new("pw-cat")
                .args([
                    "--playback",
                    "--target",
                    "0",
                    "--rate",
                    &rate,
                    "--channels",
                    "1",
                    "--format",
                    "f32",
                ])
                .args(["--latency", "10ms", "-P"])
                .arg(format!(
                    "{{ node.name = {PLAYER_NODE} node.autoconnect = false }}"
                ))
                .arg("-")
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("pw-cat: {e}"))?,
        );
        let mut stdin = player.0.stdin.take().ok_or("pw-cat has no stdin")?;
        let writer = std::thread::spawn(move || {
            let bytes: Vec<u8> = playback.iter().flat_map(|s| s.to_le_bytes()).collect();
            let _ = stdin.write_all(&bytes);
        });
        let port = format!("{PLAYER_NODE}:output_MONO");
        if !wait_for(Duration::from_secs(10), || has_output_port(&port)) {
            return Err(format!("{port} never appeared"));
        }
        let link = Command::new("pw-link")
            .args([&port, &self.mic_input])
            .status()
            .map_err(|e| format!("pw-link: {e}"))?;
        if !link.success() {
            return Err(format!("pw-link {port} {} failed", self.mic_input));
        }
        let started = t0.elapsed();
        let _ = writer.join();
        let _ = player.0.wait();
        std::thread::sleep(Duration::from_millis(500));
        drop(rec);
        let (samples, arrivals) = reader.join().map_err(|_| "reader thread panicked")?;
        Ok((samples, arrivals, started))
    }
}

impl Backend for PipeWire {
    fn name(&self) -> String {
        "linux-pipewire".into()
    }

    fn supports(&self, condition: Condition) -> bool {
        matches!(condition, Condition::AppLevelMute | Condition::HardMute)
    }

    fn capture_all(
        &mut self,
        condition: Condition,
        clips: &[Clip],
    ) -> Result<Vec<AppCapture>, String> {
        let target = match condition {
            Condition::AppLevelMute => self.mic.clone(),
            Condition::HardMute => self.target.clone(),
            other => return Err(format!("{other:?} needs the simulated backend")),
        };
        let (playback, offsets) = concatenate_shuffled(clips);
        log::info!(
            "playing {:.0} s into {} and recording {target}",
            playback.len() as f64 / self.rate as f64,
            self.mic
        );
        // A fresh node name per condition: session managers remember a stream's last target by
        // name and may "restore" it instead of honouring --target.
        let app_node = format!("hardmute-leaktest-app-{}", condition.tag());
        let (samples, arrivals, started) =
            self.record_concatenated(&target, &app_node, playback)?;
        // The audible signal of (a) shows exactly where playback starts.
        let audible = condition == Condition::AppLevelMute;
        let start = playback_start(&samples, &arrivals, started, audible);
        split_by_clip(&samples, &arrivals, start, &offsets, clips)
    }

    fn timing_is_deterministic(&self) -> bool {
        false
    }
}
