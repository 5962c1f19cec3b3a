//! The Windows backend's decisions, apart from the COM and IOCTL calls that carry them out:
//! which physical input to capture, whether the capture should be open right now, what to do
//! about a difference, and who is listening to which endpoint.

use crate::{EndpointInfo, SessionInfo};
use hardmute_backend::BackendError;
use hardmute_ipc::{ChangeSource, Counters, InputDevice, ListenTarget, Listener};
use hardmute_windows_model::ioctl::StateReply;
use std::time::Duration;

/// The virtual mic's endpoint carries this in its friendly name ("Microphone (HardMute
/// Microphone)"); it is never captured (that would feed the mic into itself) and its sessions
/// are the gated listeners.
pub const VIRTUAL_MIC_MARKER: &str = "hardmute";

/// What the error says when there is no physical input at all.
pub const NO_INPUTS: &str =
    "no physical microphone is available (the HardMute Microphone itself is never captured)";

pub fn is_virtual_name(name: &str) -> bool {
    name.to_lowercase().contains(VIRTUAL_MIC_MARKER)
}

fn physical(endpoints: &[EndpointInfo]) -> impl Iterator<Item = &EndpointInfo> {
    endpoints.iter().filter(|e| !is_virtual_name(&e.name))
}

/// The inputs `hardmute devices` lists: physical only; `name` is what `select_device` takes.
pub fn input_devices(endpoints: &[EndpointInfo]) -> Vec<InputDevice> {
    physical(endpoints)
        .map(|e| InputDevice {
            name: e.name.clone(),
            description: format!("{} [{}]", e.name, e.id),
            is_default: e.is_default,
        })
        .collect()
}

/// The physical input to capture: `wanted` by friendly name (exact, else case-insensitive) or
/// by endpoint id; `None` = the system default unless that is the virtual mic (the usual setup),
/// then the first physical input.
pub fn choose_input<'a>(
    endpoints: &'a [EndpointInfo],
    wanted: Option<&str>,
) -> Result<&'a EndpointInfo, BackendError> {
    let Some(wanted) = wanted else {
        return physical(endpoints)
            .find(|e| e.is_default)
            .or_else(|| physical(endpoints).next())
            .ok_or_else(|| BackendError::Failed(NO_INPUTS.into()));
    };
    let exact: Vec<_> = physical(endpoints)
        .filter(|e| e.name == wanted || e.id == wanted)
        .collect();
    let matches = if exact.is_empty() {
        physical(endpoints)
            .filter(|e| e.name.eq_ignore_ascii_case(wanted))
            .collect()
    } else {
        exact
    };
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(BackendError::UnknownInput {
            name: wanted.to_owned(),
            available: physical(endpoints).map(|e| e.name.clone()).collect(),
        }),
        several => Err(BackendError::Failed(format!(
            "{} inputs are named {wanted:?}; select one by its id: {}",
            several.len(),
            several
                .iter()
                .map(|e| e.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Whether the physical mic should be open, and which.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    Open {
        endpoint_id: String,
        name: String,
        /// The selected input is missing; this is the default standing in for it.
        fallback: bool,
    },
    Closed(WhyClosed),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WhyClosed {
    /// Release-on-mute: the mic is closed while muted (the OS mic indicator goes off).
    ReleasedWhileMuted,
    /// No driver ring to feed (not registered, or the driver dropped it).
    NoBridge,
    /// No usable physical input (the text says why).
    NoInput(String),
    /// No app records the HardMute Microphone (its WaveRT stream is not in RUN): on-demand
    /// capture keeps the physical mic closed, so the OS's "mic in use" signals stay off.
    NobodyRecording,
}

/// Everything the plan depends on.
#[derive(Clone, Copy, Debug)]
pub struct PlanInputs<'a> {
    pub endpoints: &'a [EndpointInfo],
    pub selection: Option<&'a str>,
    pub muted: bool,
    pub release_on_mute: bool,
    pub bridge_registered: bool,
    /// An app records the HardMute Microphone: the driver's `GET_STATE` says its stream is in
    /// RUN (`stream_running`).
    pub app_recording: bool,
    /// The guard: the physical mic is held (in exclusive mode) whether or not an app records
    /// and whatever release-on-mute says, since a closed mic is one any app may open.
    pub guard: bool,
}

pub fn plan(i: PlanInputs<'_>) -> Plan {
    if i.muted && i.release_on_mute && !i.guard {
        return Plan::Closed(WhyClosed::ReleasedWhileMuted);
    }
    if !i.bridge_registered {
        return Plan::Closed(WhyClosed::NoBridge);
    }
    if !i.app_recording && !i.guard {
        return Plan::Closed(WhyClosed::NobodyRecording);
    }
    let (chosen, fallback) = match choose_input(i.endpoints, i.selection) {
        Ok(e) => (e, false),
        // The selected input is unplugged: capture the default until it comes back (the
        // selection is kept, so a DeviceAdded event switches back).
        Err(BackendError::UnknownInput { .. }) => match choose_input(i.endpoints, None) {
            Ok(e) => (e, true),
            Err(e) => return Plan::Closed(WhyClosed::NoInput(e.to_string())),
        },
        Err(e) => return Plan::Closed(WhyClosed::NoInput(e.to_string())),
    };
    Plan::Open {
        endpoint_id: chosen.id.clone(),
        name: chosen.name.clone(),
        fallback,
    }
}

/// What the backend does once its first bridge registration has been answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AfterRegistration {
    /// Registered: this user's daemon feeds the driver and may unmute.
    Feed,
    /// The driver refused the bridge because another user owns the HardMute Microphone: stay
    /// up, muted, report `why` (in `status` and the panel), keep adding mute when asked, and
    /// let the driver refuse every unmute (`NotOwner`). The controller keeps retrying the
    /// registration quietly, so the day the owner record names this user, it feeds.
    StayUpMuted { why: String },
    /// Anything else (no driver, a broken ring, another daemon of this user): the backend does
    /// not start.
    Fail(BackendError),
}

pub fn after_registration(result: Result<(), BackendError>) -> AfterRegistration {
    match result {
        Ok(()) => AfterRegistration::Feed,
        Err(BackendError::NotOwner(why)) => AfterRegistration::StayUpMuted { why },
        Err(e) => AfterRegistration::Fail(e),
    }
}

/// What `start(initial_muted)` returns once the controller is up: a start asked to unmute by a
/// daemon whose user does not own the device says why (the daemon then stays up muted and shows
/// it); a muted start is fine either way.
pub fn start_result(initial_muted: bool, not_owner: Option<&str>) -> Result<(), BackendError> {
    match not_owner {
        Some(why) if !initial_muted => Err(BackendError::NotOwner(why.to_owned())),
        _ => Ok(()),
    }
}

/// What to do to get from the capture that is open (`current` endpoint id) to `plan`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Keep,
    Close,
    /// Open this endpoint, closing whatever is open first.
    Open(String),
}

pub fn reconcile(current: Option<&str>, plan: &Plan) -> Action {
    match (current, plan) {
        (Some(open), Plan::Open { endpoint_id, .. }) if open == endpoint_id => Action::Keep,
        (_, Plan::Open { endpoint_id, .. }) => Action::Open(endpoint_id.clone()),
        (Some(_), Plan::Closed(_)) => Action::Close,
        (None, Plan::Closed(_)) => Action::Keep,
    }
}

/// The source recorded by the driver for a change requested through the daemon. The driver
/// refuses `Startup` and `FailSafe` from callers (they are its own), so those become `Daemon`.
pub fn ioctl_source(source: ChangeSource) -> ChangeSource {
    match source {
        ChangeSource::Startup | ChangeSource::Daemon | ChangeSource::FailSafe => {
            ChangeSource::Daemon
        }
        other => other,
    }
}

/// The driver's `last_source` as the IPC reports it (0 = none yet: the driver's startup mute).
pub fn reply_source(raw: u32) -> ChangeSource {
    ChangeSource::from_u32(raw).unwrap_or(ChangeSource::Startup)
}

/// Counters for `status`: the driver's, plus the overruns the bridge saw in user space.
pub fn counters(reply: &StateReply, bridge_overruns: u64) -> Counters {
    Counters {
        frames_delivered: reply.frames_delivered,
        frames_zeroed: reply.frames_zeroed,
        underruns: reply.underruns,
        overruns: reply.overruns + bridge_overruns,
        // What apps read is only visible inside the driver (its own tests check it).
        nonzero_samples_while_muted: None,
    }
}

fn app_name(session: &SessionInfo) -> String {
    session
        .exe
        .as_deref()
        .and_then(|p| p.rsplit(['\\', '/']).next())
        .filter(|f| !f.is_empty())
        .map(|f| f.strip_suffix(".exe").unwrap_or(f).to_owned())
        .unwrap_or_else(|| format!("pid {}", session.pid))
}

/// Processes capturing right now: those on a physical mic (not gated by HardMute: flagged)
/// first, then those on the HardMute Microphone. The system session (pid 0) and inactive
/// sessions are left out; our own bridge is named as such.
pub fn listeners(sessions: &[SessionInfo], own_pid: u32) -> Vec<Listener> {
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<Listener> = sessions
        .iter()
        .filter(|s| s.active && s.pid != 0)
        .filter(|s| seen.insert((s.pid, s.endpoint_id.clone())))
        .map(|s| Listener {
            app: if s.pid == own_pid {
                "hardmuted bridge".to_owned()
            } else {
                app_name(s)
            },
            pid: Some(s.pid),
            binary: s.exe.clone(),
            target: if is_virtual_name(&s.endpoint_name) {
                ListenTarget::Virtual
            } else {
                ListenTarget::Physical {
                    name: s.endpoint_name.clone(),
                }
            },
            // The session's pid comes from the audio engine, not from the process.
            own: s.pid == own_pid,
        })
        .collect();
    out.sort_by_key(|l| (matches!(l.target, ListenTarget::Virtual), l.pid));
    out
}

/// Listeners that bypass HardMute: another process on a physical mic.
pub fn direct_physical_users(listeners: &[Listener], own_pid: u32) -> Vec<&Listener> {
    listeners
        .iter()
        .filter(|l| matches!(l.target, ListenTarget::Physical { .. }) && l.pid != Some(own_pid))
        .collect()
}

/// How long the driver may report no bridge audio, while an app records and our capture is
/// open, before the bridge counts as stale: the ring's backlog (at most ~200 ms), a WASAPI
/// period (10 ms) and the controller's 250 ms poll, with margin.
pub const BRIDGE_STALE_AFTER: Duration = Duration::from_millis(750);

/// The bridge as the driver sees it (GET_STATE's `bridge_heartbeat`, bumped by every timer
/// tick fed from our ring).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BridgeHealth {
    /// Nothing to judge: no app records from the virtual mic, or our capture is closed on
    /// purpose (release-on-mute, no input). A flat heartbeat is expected then.
    Idle,
    /// The heartbeat moved within [`BRIDGE_STALE_AFTER`] (or the watch just started).
    Live,
    /// An app records and our capture is open, yet the driver got no bridge audio for this
    /// long: apps hear zeros. The controller reopens the capture.
    Stale(Duration),
}

/// Watches the heartbeat across the controller's polls (`now` = any monotonic clock).
#[derive(Clone, Copy, Debug, Default)]
pub struct BridgeWatch {
    /// The last heartbeat value and when it was first seen.
    seen: Option<(u64, Duration)>,
}

impl BridgeWatch {
    pub fn observe(
        &mut self,
        heartbeat: u64,
        stream_running: bool,
        capture_open: bool,
        now: Duration,
    ) -> BridgeHealth {
        if !(stream_running && capture_open) {
            // Start the grace period afresh once feeding is expected again.
            self.seen = None;
            return BridgeHealth::Idle;
        }
        match self.seen {
            Some((beat, since)) if beat == heartbeat => {
                let flat = now.saturating_sub(since);
                if flat >= BRIDGE_STALE_AFTER {
                    BridgeHealth::Stale(flat)
                } else {
                    BridgeHealth::Live
                }
            }
            _ => {
                self.seen = Some((heartbeat, now));
                BridgeHealth::Live
            }
        }
    }

    /// After the controller acted on `Stale` (reopened the capture): a new grace period.
    pub fn restart(&mut self) {
        self.seen = None;
    }
}

/// How the open capture stream holds its endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sharing {
    /// `AUDCLNT_SHAREMODE_EXCLUSIVE`: every other app's open fails (AUDCLNT_E_DEVICE_IN_USE).
    Exclusive,
    /// Shared mode; with `exclusive_refused` the guard asked for exclusive mode and the OS
    /// refused it (why), so the bridge fell back rather than leave the user without audio.
    Shared { exclusive_refused: Option<String> },
}

/// Whether an open capture must be reopened because the guard changed: it asked for exclusive
/// mode (`asked_exclusive`) and the guard now says otherwise, or the reverse. A stream that asked
/// and fell back to shared is kept (no retry loop); switching the guard is what tries again.
pub fn reopen_for_guard(asked_exclusive: bool, guard: bool) -> bool {
    asked_exclusive != guard
}

/// The guard as `status` shows it, from the setting and the capture stream now open (`None`:
/// the physical mic is closed). It holds only while the stream runs in exclusive mode.
pub fn guard_state(guard: bool, capture: Option<&Sharing>) -> hardmute_ipc::GuardState {
    let why_not = match (guard, capture) {
        (false, _) | (true, Some(Sharing::Exclusive)) => None,
        (true, None) => {
            Some("the physical mic is not open (no input, no bridge, or it failed)".into())
        }
        (
            true,
            Some(Sharing::Shared {
                exclusive_refused: Some(why),
            }),
        ) => Some(format!(
            "exclusive mode refused ({why}); capturing in shared mode, other apps can open the mic"
        )),
        (
            true,
            Some(Sharing::Shared {
                exclusive_refused: None,
            }),
        ) => Some("the capture is still in shared mode (being reopened in exclusive mode)".into()),
    };
    hardmute_ipc::GuardState {
        on: guard,
        holds: guard && why_not.is_none(),
        why_not,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(id: &str, name: &str, default: bool) -> EndpointInfo {
        EndpointInfo {
            id: id.into(),
            name: name.into(),
            is_default: default,
        }
    }

    fn room() -> Vec<EndpointInfo> {
        vec![
            ep("{v}", "Microphone (HardMute Microphone)", true),
            ep("{usb}", "Microphone (USB Audio)", false),
            ep("{arr}", "Microphone Array (Realtek)", false),
        ]
    }

    #[test]
    fn a_second_users_daemon_stays_up_muted_and_says_why() {
        let why = "the driver refused the bridge: the HardMute Microphone belongs to another user";
        // The driver's answer to the bridge registration decides.
        assert_eq!(after_registration(Ok(())), AfterRegistration::Feed);
        let outcome = after_registration(Err(BackendError::NotOwner(why.into())));
        assert_eq!(
            outcome,
            AfterRegistration::StayUpMuted { why: why.into() },
            "not the owner: stay up, muted (it used to end the daemon)"
        );
        // Other failures still end the start: the daemon must not pretend to serve.
        for e in [
            BackendError::Failed("another hardmuted is already feeding it".into()),
            BackendError::NotRunning,
        ] {
            assert_eq!(
                after_registration(Err(e.clone())),
                AfterRegistration::Fail(e)
            );
        }
        // A muted start succeeds; a start asked to unmute is told why (the daemon then starts
        // muted and reports `not_owner`).
        assert_eq!(start_result(true, Some(why)), Ok(()));
        assert_eq!(
            start_result(false, Some(why)),
            Err(BackendError::NotOwner(why.into()))
        );
        assert_eq!(start_result(false, None), Ok(()));
        // With no bridge the physical mic stays closed, even while an app records and even
        // if the driver said live: a non-owner never feeds the device.
        let endpoints = room();
        for muted in [true, false] {
            assert_eq!(
                plan(PlanInputs {
                    endpoints: &endpoints,
                    selection: None,
                    muted,
                    release_on_mute: false,
                    bridge_registered: false,
                    app_recording: true,
                    guard: false,
                }),
                Plan::Closed(WhyClosed::NoBridge)
            );
        }
    }

    #[test]
    fn the_virtual_mic_is_never_an_input() {
        let eps = room();
        let devices = input_devices(&eps);
        assert_eq!(devices.len(), 2);
        assert!(devices.iter().all(|d| !d.name.contains("HardMute")));
        // The default is the virtual mic (the intended setup): take the first physical one.
        assert_eq!(choose_input(&eps, None).unwrap().id, "{usb}");
        let err = choose_input(&eps, Some("Microphone (HardMute Microphone)")).unwrap_err();
        assert!(matches!(err, BackendError::UnknownInput { .. }), "{err}");
    }

    #[test]
    fn selection_by_name_id_or_case_insensitive_name_and_a_clear_error() {
        let mut eps = room();
        eps[2].is_default = true;
        assert_eq!(
            choose_input(&eps, None).unwrap().id,
            "{arr}",
            "physical default"
        );
        assert_eq!(
            choose_input(&eps, Some("Microphone (USB Audio)"))
                .unwrap()
                .id,
            "{usb}"
        );
        assert_eq!(choose_input(&eps, Some("{arr}")).unwrap().id, "{arr}");
        assert_eq!(
            choose_input(&eps, Some("microphone (usb audio)"))
                .unwrap()
                .id,
            "{usb}"
        );
        let err = choose_input(&eps, Some("Yeti")).unwrap_err();
        assert_eq!(
            err,
            BackendError::UnknownInput {
                name: "Yeti".into(),
                available: vec![
                    "Microphone (USB Audio)".into(),
                    "Microphone Array (Realtek)".into()
                ]
            }
        );
        assert!(err
            .to_string()
            .contains("available: Microphone (USB Audio), Microphone Array"));
        eps.push(ep("{usb2}", "Microphone (USB Audio)", false));
        let err = choose_input(&eps, Some("Microphone (USB Audio)")).unwrap_err();
        assert!(err.to_string().contains("{usb}, {usb2}"), "{err}");
        assert_eq!(choose_input(&eps, Some("{usb2}")).unwrap().id, "{usb2}");
    }

    #[test]
    fn no_inputs_is_a_clear_error() {
        let err = choose_input(&[], None).unwrap_err();
        assert_eq!(err, BackendError::Failed(NO_INPUTS.into()));
        let only_virtual = [ep("{v}", "Microphone (HardMute Microphone)", true)];
        assert_eq!(
            choose_input(&only_virtual, None).unwrap_err().to_string(),
            NO_INPUTS
        );
        let err = choose_input(&only_virtual, Some("USB")).unwrap_err();
        assert!(
            err.to_string().contains("no physical inputs are available"),
            "{err}"
        );
    }

    fn inputs<'a>(
        eps: &'a [EndpointInfo],
        sel: Option<&'a str>,
        muted: bool,
        release: bool,
    ) -> PlanInputs<'a> {
        PlanInputs {
            endpoints: eps,
            selection: sel,
            muted,
            release_on_mute: release,
            bridge_registered: true,
            app_recording: true,
            guard: false,
        }
    }

    /// On-demand capture against the driver model: the model's capture stream going to RUN (an
    /// app records HardMute) and back to PAUSE/STOP is what GET_STATE reports as
    /// `stream_running`; the plan opens the physical mic exactly while it runs.
    #[test]
    fn the_physical_mic_opens_only_while_the_hardmute_stream_runs() {
        use hardmute_core::control::ControlBlock;
        use hardmute_windows_model::format::{SampleFormat, StreamFormat};
        use hardmute_windows_model::ioctl::state_reply;
        use hardmute_windows_model::stream::{CaptureStream, KsState};
        let eps = room();
        let format = StreamFormat {
            rate: 48_000,
            channels: 2,
            sample: SampleFormat::Pcm16,
        };
        let mut stream = CaptureStream::new(format, 10_000_000);
        stream.allocate_buffer(19_200, 0).unwrap();
        let control = ControlBlock::new(true);
        let mut current: Option<String> = None;
        let step = |stream: &CaptureStream, current: &mut Option<String>| {
            // What the kernel glue passes to GET_STATE: the stream's run state.
            let running = stream.state() == KsState::Run;
            let reply = state_reply(&control.snapshot(), Some((running, 48_000, 2)), true, true);
            let p = plan(PlanInputs {
                app_recording: reply.stream_running != 0,
                ..inputs(&eps, None, false, false)
            });
            match reconcile(current.as_deref(), &p) {
                Action::Open(id) => *current = Some(id),
                Action::Close => *current = None,
                Action::Keep => {}
            }
            p
        };
        assert_eq!(
            step(&stream, &mut current),
            Plan::Closed(WhyClosed::NobodyRecording)
        );
        assert_eq!(current, None, "idle: the physical mic stays closed");
        stream.set_state(KsState::Acquire, 0).unwrap();
        stream.set_state(KsState::Pause, 0).unwrap();
        step(&stream, &mut current);
        assert_eq!(current, None, "PAUSE is not recording");
        stream.set_state(KsState::Run, 0).unwrap();
        step(&stream, &mut current);
        assert_eq!(current.as_deref(), Some("{usb}"), "an app records: open");
        stream.set_state(KsState::Pause, 1).unwrap();
        step(&stream, &mut current);
        assert_eq!(current, None, "the app stopped: closed again");
    }

    #[test]
    fn plan_follows_mute_release_selection_and_unplugging() {
        let eps = room();
        let open_usb = Plan::Open {
            endpoint_id: "{usb}".into(),
            name: "Microphone (USB Audio)".into(),
            fallback: false,
        };
        assert_eq!(plan(inputs(&eps, None, false, true)), open_usb);
        assert_eq!(
            plan(inputs(&eps, None, true, false)),
            open_usb,
            "muted, no release: keep feeding"
        );
        assert_eq!(
            plan(inputs(&eps, None, true, true)),
            Plan::Closed(WhyClosed::ReleasedWhileMuted)
        );
        let mut no_bridge = inputs(&eps, None, false, false);
        no_bridge.bridge_registered = false;
        assert_eq!(plan(no_bridge), Plan::Closed(WhyClosed::NoBridge));
        // The selected mic is unplugged: the default stands in, flagged as a fallback.
        let unplugged: Vec<_> = eps.iter().filter(|e| e.id != "{arr}").cloned().collect();
        assert_eq!(
            plan(inputs(
                &unplugged,
                Some("Microphone Array (Realtek)"),
                false,
                false
            )),
            Plan::Open {
                endpoint_id: "{usb}".into(),
                name: "Microphone (USB Audio)".into(),
                fallback: true
            }
        );
        // ... and when it is back, it is chosen again.
        assert!(matches!(
            plan(inputs(&eps, Some("Microphone Array (Realtek)"), false, false)),
            Plan::Open { ref endpoint_id, fallback: false, .. } if endpoint_id == "{arr}"
        ));
        let none = plan(inputs(&[], None, false, false));
        assert_eq!(none, Plan::Closed(WhyClosed::NoInput(NO_INPUTS.into())));
    }

    #[test]
    fn reconcile_moves_only_when_needed() {
        let open = |id: &str| Plan::Open {
            endpoint_id: id.into(),
            name: String::new(),
            fallback: false,
        };
        assert_eq!(reconcile(Some("{a}"), &open("{a}")), Action::Keep);
        assert_eq!(
            reconcile(Some("{a}"), &open("{b}")),
            Action::Open("{b}".into())
        );
        assert_eq!(reconcile(None, &open("{a}")), Action::Open("{a}".into()));
        let closed = Plan::Closed(WhyClosed::ReleasedWhileMuted);
        assert_eq!(reconcile(Some("{a}"), &closed), Action::Close);
        assert_eq!(reconcile(None, &closed), Action::Keep);
    }

    #[test]
    fn sources_map_to_what_the_driver_accepts() {
        use hardmute_windows_model::ioctl::change_source;
        for s in [
            ChangeSource::Startup,
            ChangeSource::Cli,
            ChangeSource::Hotkey,
            ChangeSource::Panel,
            ChangeSource::Tray,
            ChangeSource::Daemon,
            ChangeSource::OsMuteControl,
            ChangeSource::OtherClient,
            ChangeSource::FailSafe,
        ] {
            let raw = ioctl_source(s) as u32;
            assert!(
                change_source(raw).is_some(),
                "{s:?} would be refused by the driver"
            );
            if !matches!(s, ChangeSource::Startup | ChangeSource::FailSafe) {
                assert_eq!(reply_source(raw), s, "round trip of {s:?}");
            }
        }
        assert_eq!(reply_source(0), ChangeSource::Startup);
        assert_eq!(reply_source(999), ChangeSource::Startup);
    }

    fn session(ep: &str, name: &str, pid: u32, exe: Option<&str>, active: bool) -> SessionInfo {
        SessionInfo {
            endpoint_id: ep.into(),
            endpoint_name: name.into(),
            pid,
            exe: exe.map(str::to_owned),
            active,
        }
    }

    #[test]
    fn listeners_flag_direct_physical_use_and_skip_idle_and_system_sessions() {
        let sessions = [
            session(
                "{v}",
                "Microphone (HardMute Microphone)",
                40,
                Some(r"C:\Zoom\Zoom.exe"),
                true,
            ),
            session(
                "{usb}",
                "Microphone (USB Audio)",
                77,
                Some(r"C:\Apps\spy.exe"),
                true,
            ),
            session(
                "{usb}",
                "Microphone (USB Audio)",
                77,
                Some(r"C:\Apps\spy.exe"),
                true,
            ),
            session(
                "{usb}",
                "Microphone (USB Audio)",
                10,
                Some(r"C:\hm\hardmuted.exe"),
                true,
            ),
            session(
                "{usb}",
                "Microphone (USB Audio)",
                55,
                Some(r"C:\idle.exe"),
                false,
            ),
            session("{usb}", "Microphone (USB Audio)", 0, None, true),
            session("{arr}", "Microphone Array", 91, None, true),
        ];
        let l = listeners(&sessions, 10);
        let summary: Vec<_> = l
            .iter()
            .map(|l| {
                (
                    l.app.as_str(),
                    l.pid.unwrap(),
                    matches!(l.target, ListenTarget::Virtual),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("hardmuted bridge", 10, false),
                ("spy", 77, false),
                ("pid 91", 91, false),
                ("Zoom", 40, true),
            ]
        );
        assert_eq!(
            l[1].target,
            ListenTarget::Physical {
                name: "Microphone (USB Audio)".into()
            }
        );
        let flagged: Vec<_> = direct_physical_users(&l, 10)
            .iter()
            .map(|l| l.pid)
            .collect();
        assert_eq!(
            flagged,
            [Some(77), Some(91)],
            "our own bridge is not flagged"
        );
    }

    #[test]
    fn counters_add_the_bridges_overruns() {
        let reply = StateReply {
            frames_delivered: 100,
            frames_zeroed: 40,
            underruns: 3,
            overruns: 1,
            ..StateReply::default()
        };
        let c = counters(&reply, 5);
        assert_eq!(
            (c.frames_delivered, c.frames_zeroed, c.underruns, c.overruns),
            (100, 40, 3, 6)
        );
        assert_eq!(c.nonzero_samples_while_muted, None);
    }

    #[test]
    fn a_flat_heartbeat_is_stale_only_while_an_app_records_and_our_capture_is_open() {
        let ms = Duration::from_millis;
        let mut w = BridgeWatch::default();
        // Feeding: the driver's heartbeat moves every poll.
        for i in 0..10u64 {
            assert_eq!(
                w.observe(i * 250, true, true, ms(i * 250)),
                BridgeHealth::Live
            );
        }
        // The bridge dies: flat from 2250 ms on; stale once it has been flat for the limit.
        let beat = 9 * 250;
        let mut t = 2_250;
        let mut first_stale = None;
        while first_stale.is_none() {
            t += 250;
            if let BridgeHealth::Stale(flat) = w.observe(beat, true, true, ms(t)) {
                first_stale = Some((t, flat));
            }
            assert!(t < 10_000, "never went stale");
        }
        let (t_stale, flat) = first_stale.unwrap();
        assert!(flat >= BRIDGE_STALE_AFTER && flat < BRIDGE_STALE_AFTER + ms(250));
        assert_eq!(ms(t_stale - 2_250), flat);
        // It stays stale while nothing changes.
        assert!(matches!(
            w.observe(beat, true, true, ms(t_stale + 1_000)),
            BridgeHealth::Stale(_)
        ));
        // No app recording, or our capture closed on purpose: flat is expected, never stale,
        // and a fresh grace period starts when feeding is expected again.
        assert_eq!(w.observe(beat, false, true, ms(20_000)), BridgeHealth::Idle);
        assert_eq!(w.observe(beat, true, false, ms(30_000)), BridgeHealth::Idle);
        assert_eq!(w.observe(beat, true, true, ms(40_000)), BridgeHealth::Live);
        assert_eq!(w.observe(beat, true, true, ms(40_500)), BridgeHealth::Live);
        assert!(matches!(
            w.observe(beat, true, true, ms(40_750)),
            BridgeHealth::Stale(_)
        ));
        // The controller reopened the capture: grace again; a moving heartbeat is live.
        w.restart();
        assert_eq!(w.observe(beat, true, true, ms(41_000)), BridgeHealth::Live);
        assert_eq!(
            w.observe(beat + 3, true, true, ms(42_000)),
            BridgeHealth::Live
        );
    }
    #[test]
    fn the_guard_holds_the_mic_open_through_release_on_mute_and_nobody_recording() {
        let eps = room();
        let mut i = inputs(&eps, None, true, true);
        i.app_recording = false;
        assert!(matches!(
            plan(i),
            Plan::Closed(WhyClosed::ReleasedWhileMuted)
        ));
        i.guard = true;
        assert!(matches!(plan(i), Plan::Open { .. }), "{:?}", plan(i));
        // Without a bridge there is nothing to feed: closed, and the guard says it does not hold.
        i.bridge_registered = false;
        assert_eq!(plan(i), Plan::Closed(WhyClosed::NoBridge));
    }

    #[test]
    fn the_guard_holds_only_in_exclusive_mode_and_a_fallback_is_not_retried() {
        let g = guard_state(false, Some(&Sharing::Exclusive));
        assert!(!g.on && !g.holds && g.why_not.is_none());
        let g = guard_state(true, Some(&Sharing::Exclusive));
        assert!(g.on && g.holds && g.why_not.is_none());
        let refused = Sharing::Shared {
            exclusive_refused: Some("AUDCLNT_E_DEVICE_IN_USE".into()),
        };
        let g = guard_state(true, Some(&refused));
        assert!(g.on && !g.holds);
        assert!(g.why_not.unwrap().contains("AUDCLNT_E_DEVICE_IN_USE"));
        let g = guard_state(true, None);
        assert!(!g.holds && g.why_not.unwrap().contains("not open"));
        let shared = Sharing::Shared {
            exclusive_refused: None,
        };
        let g = guard_state(true, Some(&shared));
        assert!(!g.holds && g.why_not.unwrap().contains("shared mode"));
        // A stream opened for the guard (exclusive asked) is kept while the guard stays on,
        // whether it got exclusive mode or fell back; a switch reopens it in the other mode.
        assert!(!reopen_for_guard(true, true));
        assert!(!reopen_for_guard(false, false));
        assert!(reopen_for_guard(true, false));
        assert!(reopen_for_guard(false, true));
    }
}
