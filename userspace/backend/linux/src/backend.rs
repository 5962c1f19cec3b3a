//! The Linux backend: hardmuted as the controller of the gate inside the PipeWire server
//! (`driver/linux/gate`, loaded by the `pipewire.conf.d` drop-in `hardmute install` writes;
//! controlled through this crate's [`Controller`]). HardMute Microphone exists
//! whenever PipeWire runs and delivers zeros unless this daemon holds the gate's lease and the
//! user's state is live.

use crate::{Captures, Config, Controller, Error};
use hardmute_backend::{Backend, BackendError, BackendOptions, BackendStatus, LevelReading};
use hardmute_ipc::{ChangeSource, Counters, InputDevice, ListenTarget, Listener};
use std::time::{Duration, Instant};

/// How often a lost PipeWire is looked for again.
const RECONNECT_EVERY: Duration = Duration::from_secs(1);

pub struct LinuxBackend {
    options: BackendOptions,
    mic: Option<Controller>,
    /// PipeWire went away (restart, upgrade): the mute state to come back in, and when we last
    /// tried. The restarted server loads the gate again (muted, no lease) before any app can
    /// record it; the state is applied once we are back.
    lost: Option<Lost>,
    /// The gate's nodes were missing at the last look (warned once per absence).
    gate_missing_warned: bool,
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
            gate_missing_warned: false,
        }
    }

    fn mic(&self) -> Result<&Controller, BackendError> {
        self.mic.as_ref().ok_or(if self.lost.is_some() {
            BackendError::Failed(
                "PipeWire is gone (restarting?); HardMute reconnects when it is back".into(),
            )
        } else {
            BackendError::NotRunning
        })
    }

    fn connect(&self, muted: bool) -> Result<Controller, Error> {
        Controller::start(Config {
            // After PipeWire restarted, the chosen mic may appear after hardmute_mic: follow the
            // default until it does (`reselect`), rather than stay muted as for a typo at start.
            source: if self.lost.is_some() {
                None
            } else {
                self.options.device.clone()
            },
            release_on_mute: self.options.release_on_mute,
            initially_muted: muted,
            lock_dir: None,
            locator: None,
            fade_ms: Some(self.options.fade_ms),
        })
    }

    /// Says, once per absence, that the gate is not in the graph: the drop-in is not installed,
    /// or PipeWire could not load the plugin (it then runs without HardMute Microphone, and apps
    /// that asked for it get another source).
    fn check_gate_present(&mut self) {
        let Some(mic) = &self.mic else { return };
        let st = mic.status();
        let missing = st.connected && (st.hardmute_node.is_none() || st.capture_node.is_none());
        if missing && !self.gate_missing_warned {
            log::error!(
                "HardMute Microphone is not in the PipeWire graph: run `hardmute install` (it \
                 writes the PipeWire drop-in and restarts PipeWire), or check PipeWire's log for \
                 libpipewire-module-filter-chain / {}",
                crate::GATE_PLUGIN_FILE
            );
        }
        self.gate_missing_warned = missing;
    }
}

/// The chosen physical source once it is there again (after a reconnect that followed the
/// default meanwhile). An in-memory look at the graph; nothing when already selected.
fn reselect(mic: &Controller, wanted: Option<&str>) {
    let Some(wanted) = wanted else { return };
    if mic.status().source_wanted.as_deref() == Some(wanted)
        || !mic.sources().iter().any(|s| s.name == wanted)
    {
        return;
    }
    match mic.select_source(Some(wanted.to_owned())) {
        Ok(()) => log::info!("feeding HardMute from {wanted:?} again"),
        Err(e) => log::debug!("{wanted:?} not selectable yet: {e}"),
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
        // Not started = no controller = the gate delivers zeros.
        self.mic.as_ref().is_none_or(Controller::is_muted)
    }

    fn status(&self) -> BackendStatus {
        let Some(mic) = &self.mic else {
            return BackendStatus::not_running(self.options.device.clone());
        };
        let st = mic.status();
        let muted = mic.is_muted();
        let Some(snap) = mic.snapshot() else {
            // The gate has not made its page yet (nothing recorded since PipeWire started): it
            // delivers zeros until it has one and this daemon applied the state to it.
            return BackendStatus {
                muted,
                generation: 0,
                source: ChangeSource::Startup,
                device: st.source_wanted.clone(),
                physical_open: st.physical_running,
                counters: Counters::default(),
            };
        };
        BackendStatus {
            muted: snap.muted,
            generation: snap.generation,
            source: snap.source(),
            device: st.source_wanted.clone(),
            physical_open: st.physical_running,
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
                // The gate's own input is left out by the graph (made by the PipeWire server
                // itself, by the server-verified pid of its client).
                own: false,
            })
            .collect())
    }

    fn set_release_on_mute(&mut self, release: bool) -> Result<(), BackendError> {
        self.mic()?.set_release_on_mute(release).map_err(failed)?;
        self.options.release_on_mute = release;
        Ok(())
    }

    /// The Linux guard is not held by hardmuted: it is PipeWire and WirePlumber configuration
    /// (`hardmute guard on|off|status`), enforced by the server and the session manager.
    fn set_guard(&mut self, _on: bool) -> Result<(), BackendError> {
        Err(BackendError::Unsupported(
            "on Linux the guard is PipeWire and WirePlumber configuration, not a daemon option: \
             use `hardmute guard on|off|status`"
                .into(),
        ))
    }

    fn level(&self) -> Option<LevelReading> {
        // Metered by the gate on what it delivered: exactly 0 while muted.
        let (peak, rms, windows) = self.mic.as_ref()?.level()?;
        Some(LevelReading { peak, rms, windows })
    }

    /// A PipeWire that went away (its connection reported EPIPE) is reconnected to once it is
    /// back, and the gate it loaded again gets the mute state we had (or muted, if a mute came
    /// meanwhile). Tried at most every [`RECONNECT_EVERY`]; each try is a socket connect that
    /// fails at once while PipeWire is down.
    fn poll(&mut self) {
        self.check_gate_present();
        if let Some(mic) = &self.mic {
            if mic.status().connected || mic.is_running() {
                reselect(mic, self.options.device.as_deref());
                return;
            }
            let muted = mic.is_muted();
            log::warn!(
                "PipeWire went away (HardMute Microphone comes back with it, muted until this \
                 daemon is reconnected). Reconnecting when it is back ({})",
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
                    "PipeWire is back: controlling its gate again ({})",
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
            // Fail closed first; then the lease is given up. The gate and its nodes stay in
            // PipeWire, so apps keep reading zeros.
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
        let mut b = LinuxBackend::new(BackendOptions {
            fade_ms: 5,
            device: None,
            release_on_mute: false,
            guard: false,
        });
        assert!(matches!(
            b.set_guard(true),
            Err(BackendError::Unsupported(m)) if m.contains("hardmute guard on")
        ));
        assert_eq!(b.guard(), None);
        assert!(b.hard_mute());
        assert!(b.status().muted);
        assert_eq!(b.listeners(), Err(BackendError::NotRunning));
    }
}
