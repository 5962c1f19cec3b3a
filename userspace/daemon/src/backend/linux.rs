//! The Linux backend: the HardMute Microphone on PipeWire (`driver/linux`, crate
//! `hardmute-pipewire`). The node apps record from lingers in PipeWire, so when this daemon
//! dies apps keep reading zeros from it; the gate runs in the daemon's filter, in the same graph
//! cycle that captured the samples.

use super::{Backend, BackendError, BackendOptions, BackendStatus, LevelReading};
use hardmute_ipc::{ChangeSource, Counters, InputDevice, ListenTarget, Listener};
use hardmute_pipewire::{Captures, Config, Error, VirtualMic};
use std::time::{Duration, Instant};

/// How often a lost PipeWire is looked for again.
const RECONNECT_EVERY: Duration = Duration::from_secs(1);

pub struct LinuxBackend {
    options: BackendOptions,
    mic: Option<VirtualMic>,
    /// PipeWire went away (restart, upgrade): the mute state to come back in, and when we last
    /// tried. Its graph, hardmute_mic included, went with it, so nothing can be recorded from
    /// HardMute meanwhile.
    lost: Option<Lost>,
}

struct Lost {
    muted: bool,
    last_try: Instant,
}

impl LinuxBackend {
    pub fn new(options: BackendOptions) -> Self {
        LinuxBackend {
            options,
            mic: None,
            lost: None,
        }
    }

    fn mic(&self) -> Result<&VirtualMic, BackendError> {
        self.mic.as_ref().ok_or(if self.lost.is_some() {
            BackendError::Failed(
                "PipeWire is gone (restarting?); HardMute reconnects when it is back".into(),
            )
        } else {
            BackendError::NotRunning
        })
    }

    fn connect(&self, muted: bool) -> Result<VirtualMic, Error> {
        VirtualMic::start(Config {
            source: self.options.device.clone(),
            release_on_mute: self.options.release_on_mute,
            initially_muted: muted,
            lock_dir: None,
            fade_ms: Some(self.options.fade_ms),
        })
    }
}

fn failed(e: Error) -> BackendError {
    match e {
        Error::UnknownSource(u) => BackendError::UnknownInput {
            name: u.wanted,
            available: u.available,
        },
        other => BackendError::Failed(other.to_string()),
    }
}

impl Backend for LinuxBackend {
    fn name(&self) -> &'static str {
        "linux"
    }

    fn start(&mut self, initial_muted: bool) -> Result<(), BackendError> {
        if self.mic.is_some() {
            return Ok(());
        }
        let mic = self.connect(initial_muted).map_err(failed)?;
        if let Some(warning) = mic.status().last_error {
            log::warn!("{warning}");
        }
        self.mic = Some(mic);
        Ok(())
    }

    fn set_hard_mute(&mut self, muted: bool, source: ChangeSource) -> Result<(), BackendError> {
        // Without PipeWire nothing can be recorded; a mute is still taken, for the reconnect.
        if let (None, Some(lost)) = (&self.mic, &mut self.lost) {
            if muted {
                lost.muted = true;
                return Ok(());
            }
        }
        self.mic()?.set_hard_mute(muted, source).map_err(failed)
    }

    fn hard_mute(&self) -> bool {
        // Not started = nothing can flow = muted.
        self.mic.as_ref().is_none_or(VirtualMic::is_muted)
    }

    fn status(&self) -> BackendStatus {
        let Some(mic) = &self.mic else {
            return BackendStatus {
                muted: true,
                generation: 0,
                source: ChangeSource::Startup,
                device: self.options.device.clone(),
                physical_open: false,
                counters: Counters::default(),
            };
        };
        let snap = mic.control().snapshot();
        let st = mic.status();
        BackendStatus {
            muted: snap.muted,
            generation: snap.generation,
            source: snap.source(),
            device: st.source_wanted.clone(),
            physical_open: st.capture_links > 0,
            counters: Counters {
                frames_delivered: snap.frames_delivered,
                frames_zeroed: snap.frames_zeroed,
                underruns: snap.underruns,
                overruns: snap.overruns,
                nonzero_samples_while_muted: None,
            },
        }
    }

    fn physical_inputs(&self) -> Result<Vec<InputDevice>, BackendError> {
        Ok(self
            .mic()?
            .sources()
            .into_iter()
            .map(|s| InputDevice {
                name: s.name,
                description: s.description,
                is_default: s.is_default,
            })
            .collect())
    }

    fn select_input(&mut self, name: Option<&str>) -> Result<(), BackendError> {
        self.mic()?
            .select_source(name.map(str::to_owned))
            .map_err(failed)?;
        self.options.device = name.map(str::to_owned);
        Ok(())
    }

    fn listeners(&self) -> Result<Vec<Listener>, BackendError> {
        Ok(self
            .mic()?
            .listeners()
            .into_iter()
            .map(|l| Listener {
                app: l.app.app_name.clone().unwrap_or(l.node_name),
                pid: l.app.pid,
                binary: l.app.binary,
                target: match l.captures {
                    Captures::HardMute => ListenTarget::Virtual,
                    Captures::Physical { source_name } => {
                        ListenTarget::Physical { name: source_name }
                    }
                },
            })
            .collect())
    }

    fn set_release_on_mute(&mut self, release: bool) -> Result<(), BackendError> {
        self.mic()?.set_release_on_mute(release).map_err(failed)?;
        self.options.release_on_mute = release;
        Ok(())
    }

    fn level(&self) -> Option<LevelReading> {
        let reading = self.mic.as_ref()?.level();
        Some(LevelReading {
            peak: reading.peak,
            rms: reading.rms,
            windows: reading.windows,
        })
    }

    /// A PipeWire that went away (its connection reported EPIPE) is reconnected to once it is
    /// back, with hardmute_mic recreated in the mute state it had (or muted, if a mute came
    /// meanwhile). Tried at most every [`RECONNECT_EVERY`]; each try is a socket connect that
    /// fails at once while PipeWire is down.
    fn poll(&mut self) {
        if let Some(mic) = &self.mic {
            if mic.status().connected || mic.is_running() {
                return;
            }
            let muted = mic.is_muted();
            log::warn!(
                "PipeWire went away; HardMute Microphone went with it. Reconnecting when it is \
                 back ({})",
                if muted { "muted" } else { "live" }
            );
            self.mic = None;
            self.lost = Some(Lost {
                muted,
                last_try: Instant::now(),
            });
            return;
        }
        let Some(lost) = &self.lost else { return };
        if lost.last_try.elapsed() < RECONNECT_EVERY {
            return;
        }
        let muted = lost.muted;
        match self.connect(muted) {
            Ok(mic) => {
                log::info!(
                    "PipeWire is back: HardMute Microphone recreated ({})",
                    if muted { "muted" } else { "live" }
                );
                if let Some(warning) = mic.status().last_error {
                    log::warn!("{warning}");
                }
                self.mic = Some(mic);
                self.lost = None;
            }
            Err(e) => {
                log::debug!("PipeWire not back yet: {e}");
                if let Some(lost) = &mut self.lost {
                    lost.last_try = Instant::now();
                }
            }
        }
    }

    fn stop(&mut self) {
        self.lost = None;
        if let Some(mut mic) = self.mic.take() {
            // Fail closed first; then the filter and its links leave the graph. hardmute_mic
            // stays, so apps keep reading zeros.
            let _ = mic.set_hard_mute(true, ChangeSource::FailSafe);
            mic.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hardmute_core::control::{Authority, ControlBlock};

    #[test]
    fn change_sources_round_trip_through_the_control_block() {
        for s in [
            ChangeSource::Cli,
            ChangeSource::Hotkey,
            ChangeSource::Panel,
            ChangeSource::Tray,
            ChangeSource::Daemon,
            ChangeSource::OsMuteControl,
            ChangeSource::OtherClient,
            ChangeSource::FailSafe,
        ] {
            let block = ControlBlock::new(true);
            assert_eq!(block.snapshot().source(), ChangeSource::Startup);
            block.set_muted(false, s, Authority::Owner).unwrap();
            assert_eq!(block.snapshot().source(), s);
        }
    }

    #[test]
    fn not_started_is_muted_and_not_running() {
        let b = LinuxBackend::new(BackendOptions {
            fade_ms: 5,
            device: None,
            release_on_mute: false,
        });
        assert!(b.hard_mute());
        assert!(b.status().muted);
        assert_eq!(b.listeners(), Err(BackendError::NotRunning));
    }
}
