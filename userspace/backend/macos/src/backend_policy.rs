//! The macOS backend's decisions that the bridge's [`crate::policy`] does not already make, apart
//! from the CoreAudio calls (compiled and tested on every platform): how the daemon names the
//! physical inputs, which one to capture given the user's selection, and how the HAL's process
//! list becomes `Listener`s.

use crate::policy::{self as bridge, InputProcess, Listening};
use hardmute_backend::BackendError;
use hardmute_ipc::{InputDevice, ListenTarget, Listener};

/// The physical inputs as the daemon shows them: `name` is the device UID (stable across
/// reboots and renames, what `select_input` takes), `description` the name the user sees.
/// HardMute's own devices are never listed.
pub fn physical_inputs(devices: &[bridge::InputDevice]) -> Vec<InputDevice> {
    devices
        .iter()
        .filter(|d| !bridge::is_own(&d.uid))
        .map(|d| InputDevice {
            name: d.uid.clone(),
            description: d.name.clone(),
            is_default: d.is_default,
        })
        .collect()
}

/// A physical input the user named, by UID or else by its exact displayed name.
fn find<'a>(devices: &'a [bridge::InputDevice], name: &str) -> Option<&'a bridge::InputDevice> {
    let physical = || devices.iter().filter(|d| !bridge::is_own(&d.uid));
    physical()
        .find(|d| d.uid == name)
        .or_else(|| physical().find(|d| d.name == name))
}

/// `select_input`: the device to capture for `name` (`None` = follow the system default).
/// An unknown name is the typed error listing what is available; nothing changes then.
pub fn resolve_selection<'a>(
    devices: &'a [bridge::InputDevice],
    name: Option<&str>,
) -> Result<Option<&'a bridge::InputDevice>, BackendError> {
    match name {
        None => Ok(bridge::choose_capture_device(devices, None)),
        Some(wanted) => match find(devices, wanted) {
            Some(d) => Ok(Some(d)),
            None => Err(BackendError::UnknownInput {
                name: wanted.to_owned(),
                available: physical_inputs(devices)
                    .into_iter()
                    .map(|d| d.name)
                    .collect(),
            }),
        },
    }
}

/// At start and on restarts: an explicit selection wins while it is plugged in; otherwise the
/// bridge crate's choice (the default input, never our own devices, the remembered one if
/// HardMute itself is the default). `None` = no physical input at all.
pub fn capture_target<'a>(
    devices: &'a [bridge::InputDevice],
    selected: Option<&str>,
) -> Option<&'a bridge::InputDevice> {
    selected
        .and_then(|s| find(devices, s))
        .or_else(|| bridge::choose_capture_device(devices, selected))
}

/// What the bridge is doing now, as the follower sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaptureNow {
    /// The physical device the bridge runs on (HAL id, UID); `None` = no bridge.
    pub device: Option<(u32, String)>,
    /// The physical mic is closed (release-on-mute) while the feed keeps running.
    pub paused: bool,
}

/// What to do after the HAL signalled (`hal_event` bits) — never a change of the mute state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reaction {
    Keep,
    /// (Re)start the bridge on this device; `open` = whether the physical mic may be opened now
    /// (false while hard-muted with release-on-mute: the mic stays closed across the switch).
    Restart {
        id: u32,
        uid: String,
        open: bool,
    },
    /// No physical input left: drop the bridge (HardMute delivers silence).
    Stop,
}

/// The follower: after the HAL's `events`, the device to capture is picked from `devices` (the
/// live inputs, re-read after the event) by [`capture_target`] for an explicit selection, else
/// the default input, else (HardMute is the default) the device captured so far; never HardMute
/// itself. The
/// bridge restarts when that is another device (a new default, a fallback, an explicit
/// selection plugged back in), when the captured device came back under a new HAL id, or when the
/// captured device died (its AudioUnit delivers nothing any more). The mute state is not an
/// output: a restart while hard-muted with release-on-mute keeps the physical mic closed.
pub fn react(
    events: u32,
    devices: &[bridge::InputDevice],
    selected: Option<&str>,
    now: &CaptureNow,
    muted: bool,
    release_on_mute: bool,
    app_recording: bool,
) -> Reaction {
    use crate::policy::hal_event;
    if events == 0 {
        return Reaction::Keep;
    }
    let died = events & hal_event::CAPTURED_DEVICE_DIED != 0;
    let current_uid = now.device.as_ref().map(|(_, uid)| uid.as_str());
    // Following the default: when the default becomes HardMute itself (the usual setup), the
    // device captured so far is the remembered choice, not "the first physical input".
    let target = match selected {
        Some(_) => capture_target(devices, selected),
        None => bridge::choose_capture_device(devices, current_uid),
    };
    let Some(target) = target else {
        return match now.device {
            Some(_) => Reaction::Stop,
            None => Reaction::Keep,
        };
    };
    let same = now
        .device
        .as_ref()
        .is_some_and(|(id, uid)| *id == target.id && *uid == target.uid);
    if same && !died {
        return Reaction::Keep;
    }
    Reaction::Restart {
        id: target.id,
        uid: target.uid.clone(),
        open: bridge::should_capture(muted, release_on_mute, app_recording),
    }
}

/// What to do with the physical mic now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureAction {
    Keep,
    /// Resume the capture (an app started recording HardMute, or an unmute with release-on-mute).
    Open,
    /// Stop the capture, the feed keeps running (no app records HardMute any more, or a mute
    /// with release-on-mute): the OS's "mic in use" signals go off.
    Close,
}

/// On-demand capture: the physical mic is open only while some app records the HardMute
/// Microphone (the plug-in's "running somewhere", `app_recording`; `None` = the HAL could not
/// say, then capture as before rather than starve a recording app) and release-on-mute allows.
pub fn capture_action(
    mic_open: bool,
    muted: bool,
    release_on_mute: bool,
    app_recording: Option<bool>,
) -> CaptureAction {
    let want = bridge::should_capture(muted, release_on_mute, app_recording.unwrap_or(true));
    match (mic_open, want) {
        (false, true) => CaptureAction::Open,
        (true, false) => CaptureAction::Close,
        _ => CaptureAction::Keep,
    }
}

/// The HAL's input processes (macOS 14+) as listeners, the daemon's own capture left out.
/// A process with any physical input open is flagged with that input (it bypasses hard mute).
pub fn listeners(processes: &[InputProcess], daemon_pid: i32) -> Vec<Listener> {
    bridge::listeners(processes, daemon_pid)
        .into_iter()
        .map(|(p, listening)| Listener {
            app: if p.bundle_id.is_empty() {
                format!("pid {}", p.pid)
            } else {
                p.bundle_id.clone()
            },
            pid: u32::try_from(p.pid).ok(),
            binary: None,
            target: match listening {
                Listening::ThroughHardMute => ListenTarget::Virtual,
                Listening::PhysicalMicDirectly => ListenTarget::Physical {
                    name: p
                        .device_uids
                        .iter()
                        .find(|u| !bridge::is_own(u))
                        .cloned()
                        .unwrap_or_else(|| "unknown input".to_owned()),
                },
            },
            // The daemon's own capture is left out above, by the pid the HAL reports.
            own: false,
        })
        .collect()
}

// ---- the guard: hog mode on the physical input ---------------------------------------------------

/// What capture decisions see with the guard on: it holds the physical mic open whether or not an
/// app records the HardMute Microphone and whatever release-on-mute says (a mic left closed could
/// be opened by any app), so the decisions above get `(release_on_mute, app_recording)` as
/// `(false, true)`. Off: the inputs unchanged (on-demand capture, release-on-mute).
pub fn capture_inputs(guard: bool, release_on_mute: bool, app_recording: bool) -> (bool, bool) {
    if guard {
        (false, true)
    } else {
        (release_on_mute, app_recording)
    }
}

/// Who holds hog mode on a device, from `kAudioDevicePropertyHogMode` (a pid; -1 = nobody).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HogOwner {
    Nobody,
    Us,
    Other(i32),
}

pub fn hog_owner(pid: i32, own_pid: i32) -> HogOwner {
    match pid {
        -1 => HogOwner::Nobody,
        p if p == own_pid => HogOwner::Us,
        p => HogOwner::Other(p),
    }
}

/// Setting `kAudioDevicePropertyHogMode` toggles it for the calling process (the value written is
/// ignored: nobody -> us, us -> nobody, another owner stays): so the glue reads the owner first
/// and writes only when that moves it the way asked. `Err`: another process owns it (why).
pub fn hog_toggle_needed(owner: HogOwner, take: bool, device: &str) -> Result<bool, String> {
    match (owner, take) {
        (HogOwner::Nobody, true) | (HogOwner::Us, false) => Ok(true),
        (HogOwner::Us, true) | (HogOwner::Nobody, false) => Ok(false),
        (HogOwner::Other(pid), true) => Err(format!(
            "process {pid} holds hog mode on {device}: apps other than it cannot open that mic, \
             but hardmuted does not hold it (capturing in shared mode)"
        )),
        // Someone else took it after we let go: not ours to release.
        (HogOwner::Other(_), false) => Ok(false),
    }
}

/// The guard's hog mode as the backend keeps it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hog {
    /// The device (HAL id) this process holds hog mode on.
    pub held: Option<u32>,
    /// The device the last attempt to take it failed on, and why: not tried again until the
    /// guard is switched or the captured device changes (never a fight in a loop).
    pub refused: Option<(u32, String)>,
}

/// What to do with hog mode now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HogPlan {
    /// Release hog mode on this device first.
    pub release: Option<u32>,
    /// Then take it on this one.
    pub take: Option<u32>,
}

/// Hog mode follows the guard and the open physical mic (`open_on`: the device whose capture runs
/// now, `None` = mic closed or no bridge): held on that device while the guard is on, released
/// when the guard goes off, the mic closes or the device changes. A device that refused it is not
/// tried again (see [`Hog::refused`]).
pub fn hog_plan(guard: bool, open_on: Option<u32>, hog: &Hog) -> HogPlan {
    let want = open_on.filter(|_| guard);
    let release = hog.held.filter(|held| Some(*held) != want);
    let refused_here = hog.refused.as_ref().map(|(id, _)| *id) == want;
    let take = want.filter(|w| hog.held != Some(*w) && !refused_here);
    HogPlan { release, take }
}

/// The two HAL calls hog mode needs (`macos::hog_mode_owner`, `macos::toggle_hog_mode`), so the
/// sequence below runs against a scripted HAL in tests.
pub trait HogHal {
    /// The pid holding hog mode on `device` (-1 = nobody).
    fn owner(&self, device: u32) -> Result<i32, String>;
    /// Writes the property (a toggle for the caller); the owner after.
    fn toggle(&self, device: u32) -> Result<i32, String>;
}

/// Brings hog mode in line with [`hog_plan`]: releases where it must (writing only while this
/// process holds it), then takes it where it must (reading the owner first; another owner is a
/// refusal, remembered in `hog` and reported, never fought). `name` names a device in messages.
pub fn apply_hog(
    hal: &impl HogHal,
    guard: bool,
    open_on: Option<u32>,
    own_pid: i32,
    name: impl Fn(u32) -> String,
    hog: &mut Hog,
) {
    let plan = hog_plan(guard, open_on, hog);
    if let Some(id) = plan.release {
        hog.held = None;
        let toggle = hal
            .owner(id)
            .map(|pid| hog_toggle_needed(hog_owner(pid, own_pid), false, ""));
        match toggle {
            Ok(Ok(true)) => match hal.toggle(id) {
                Ok(-1) => log::info!("guard: released hog mode on {}", name(id)),
                Ok(pid) => log::warn!("guard: hog mode on {} is now held by {pid}", name(id)),
                Err(e) => log::warn!("guard: releasing hog mode on {}: {e}", name(id)),
            },
            Ok(_) => {}
            // A device that went away takes its hog mode with it.
            Err(e) => log::debug!("guard: reading hog mode on {}: {e}", name(id)),
        }
    }
    if let Some(id) = plan.take {
        let device = name(id);
        let result = hal
            .owner(id)
            .map_err(|e| format!("reading hog mode on {device}: {e}"))
            .and_then(|pid| hog_toggle_needed(hog_owner(pid, own_pid), true, &device))
            .and_then(|toggle| {
                if !toggle {
                    return Ok(());
                }
                match hal.toggle(id).map(|pid| hog_owner(pid, own_pid)) {
                    Ok(HogOwner::Us) => Ok(()),
                    Ok(other) => Err(format!(
                        "hog mode on {device} was asked for but is held by {other:?}"
                    )),
                    Err(e) => Err(format!("taking hog mode on {device}: {e}")),
                }
            });
        match result {
            Ok(()) => {
                log::info!("guard: holding hog mode on {device} (other apps cannot open it)");
                hog.held = Some(id);
                hog.refused = None;
            }
            Err(why) => {
                log::warn!("guard: {why}");
                hog.refused = Some((id, why));
            }
        }
    }
}

/// The guard as `status` shows it, from the setting, the open mic and the hog state.
pub fn guard_state(guard: bool, open_on: Option<u32>, hog: &Hog) -> hardmute_ipc::GuardState {
    let holds = guard && open_on.is_some() && hog.held == open_on;
    let why_not = match (guard, holds, open_on) {
        (false, ..) | (true, true, _) => None,
        (true, false, None) => Some("no physical mic is open (no input, or it failed)".to_owned()),
        (true, false, Some(id)) => Some(match &hog.refused {
            Some((refused, why)) if *refused == id => why.clone(),
            _ => "hog mode is not taken yet".to_owned(),
        }),
    };
    hardmute_ipc::GuardState {
        on: guard,
        holds,
        why_not,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{FEED_UID, MIC_UID};

    fn dev(id: u32, uid: &str, name: &str, default: bool) -> bridge::InputDevice {
        bridge::InputDevice {
            id,
            uid: uid.into(),
            name: name.into(),
            is_default: default,
        }
    }

    fn devices() -> Vec<bridge::InputDevice> {
        vec![
            dev(1, "BuiltInMicUID", "MacBook Pro Microphone", false),
            dev(2, MIC_UID, "HardMute Microphone", true),
            dev(3, "USB-UID", "USB Mic", false),
        ]
    }

    #[test]
    fn lists_physical_inputs_by_uid_without_our_own_devices() {
        let mut devs = devices();
        devs.push(dev(4, FEED_UID, "HardMute Feed", false));
        let listed = physical_inputs(&devs);
        let names: Vec<_> = listed.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["BuiltInMicUID", "USB-UID"]);
        assert_eq!(listed[1].description, "USB Mic");
        assert!(listed.iter().all(|d| !d.is_default));
    }

    #[test]
    fn selection_by_uid_or_name_and_unknown_names_list_the_inputs() {
        let devs = devices();
        assert_eq!(
            resolve_selection(&devs, Some("USB-UID"))
                .unwrap()
                .unwrap()
                .id,
            3
        );
        assert_eq!(
            resolve_selection(&devs, Some("USB Mic"))
                .unwrap()
                .unwrap()
                .id,
            3
        );
        // None follows the default; the default is HardMute itself, so the first physical one.
        assert_eq!(resolve_selection(&devs, None).unwrap().unwrap().id, 1);
        // Our own microphone is not selectable (it would loop into itself).
        for wanted in [MIC_UID, "HardMute Microphone", "gone"] {
            assert_eq!(
                resolve_selection(&devs, Some(wanted)),
                Err(BackendError::UnknownInput {
                    name: wanted.into(),
                    available: vec!["BuiltInMicUID".into(), "USB-UID".into()],
                })
            );
        }
    }

    #[test]
    fn explicit_selection_wins_over_the_default_while_plugged_in() {
        let devs = [
            dev(1, "BuiltInMicUID", "Built-in", true),
            dev(3, "USB-UID", "USB Mic", false),
        ];
        assert_eq!(capture_target(&devs, Some("USB-UID")).unwrap().id, 3);
        assert_eq!(capture_target(&devs, None).unwrap().id, 1);
        // Unplugged selection: fall back to the default rather than fail the start.
        assert_eq!(capture_target(&devs, Some("gone")).unwrap().id, 1);
        assert!(capture_target(&[dev(2, MIC_UID, "HardMute", true)], None).is_none());
    }

    /// A scripted HAL: the devices plugged in (with their ids), the default input, and the
    /// bridge as the daemon would run it after each [`react`]. The mute state is held here and
    /// never touched by the follower.
    struct World {
        devices: Vec<bridge::InputDevice>,
        next_id: u32,
        capture: CaptureNow,
        muted: bool,
        release_on_mute: bool,
        selected: Option<String>,
        restarts: usize,
        /// Some app records the HardMute Microphone (the plug-in's "running somewhere").
        app_recording: bool,
    }

    impl World {
        fn new() -> Self {
            let mut w = World {
                devices: vec![dev(2, MIC_UID, "HardMute Microphone", false)],
                next_id: 10,
                capture: CaptureNow::default(),
                muted: false,
                release_on_mute: false,
                selected: None,
                restarts: 0,
                app_recording: true,
            };
            w.plug("BuiltInMicUID", "MacBook Pro Microphone");
            w.set_default("BuiltInMicUID");
            w.step(hal_event::DEFAULT_INPUT);
            w
        }
        fn plug(&mut self, uid: &str, name: &str) {
            self.next_id += 1;
            self.devices.push(dev(self.next_id, uid, name, false));
        }
        fn unplug(&mut self, uid: &str) {
            self.devices.retain(|d| d.uid != uid);
        }
        fn set_default(&mut self, uid: &str) {
            for d in &mut self.devices {
                d.is_default = d.uid == uid;
            }
        }
        fn step(&mut self, events: u32) -> Reaction {
            let r = react(
                events,
                &self.devices,
                self.selected.as_deref(),
                &self.capture,
                self.muted,
                self.release_on_mute,
                self.app_recording,
            );
            match &r {
                Reaction::Keep => {}
                Reaction::Restart { id, uid, open } => {
                    assert!(!bridge::is_own(uid), "re-selected HardMute itself: {uid}");
                    self.capture = CaptureNow {
                        device: Some((*id, uid.clone())),
                        paused: !open,
                    };
                    self.restarts += 1;
                }
                Reaction::Stop => self.capture = CaptureNow::default(),
            }
            r
        }
        fn captured_uid(&self) -> Option<&str> {
            self.capture.device.as_ref().map(|(_, u)| u.as_str())
        }
    }

    use crate::policy::hal_event;

    #[test]
    fn follows_the_default_input_to_another_mic_and_not_to_hardmute() {
        let mut w = World::new();
        assert_eq!(w.captured_uid(), Some("BuiltInMicUID"));
        w.plug("USB-UID", "USB Mic");
        assert_eq!(
            w.step(hal_event::DEVICE_LIST),
            Reaction::Keep,
            "a new device alone"
        );
        w.set_default("USB-UID");
        assert!(matches!(
            w.step(hal_event::DEFAULT_INPUT),
            Reaction::Restart { open: true, .. }
        ));
        assert_eq!(w.captured_uid(), Some("USB-UID"));
        // The user makes HardMute the default input (the usual setup): keep the USB mic.
        w.set_default(MIC_UID);
        assert_eq!(w.step(hal_event::DEFAULT_INPUT), Reaction::Keep);
        assert_eq!(w.captured_uid(), Some("USB-UID"));
        // Nothing signalled: nothing is re-read or changed.
        w.set_default("BuiltInMicUID");
        assert_eq!(w.step(0), Reaction::Keep);
        assert_eq!(w.captured_uid(), Some("USB-UID"));
        assert_eq!(w.restarts, 2);
    }

    #[test]
    fn captured_device_unplugged_then_back() {
        let mut w = World::new();
        w.plug("USB-UID", "USB Mic");
        w.selected = Some("USB-UID".into());
        w.set_default(MIC_UID);
        w.step(hal_event::DEVICE_LIST);
        assert_eq!(w.captured_uid(), Some("USB-UID"));
        // Unplugged: the liveness listener and the device list fire together.
        w.unplug("USB-UID");
        w.step(hal_event::CAPTURED_DEVICE_DIED | hal_event::DEVICE_LIST);
        assert_eq!(
            w.captured_uid(),
            Some("BuiltInMicUID"),
            "fallback while it is gone"
        );
        // Plugged back (a new HAL id): the selection wins again.
        w.plug("USB-UID", "USB Mic");
        let r = w.step(hal_event::DEVICE_LIST);
        assert!(matches!(r, Reaction::Restart { ref uid, .. } if uid == "USB-UID"));
        let (id, _) = w.capture.device.clone().unwrap();
        assert_eq!(
            id,
            w.devices.iter().find(|d| d.uid == "USB-UID").unwrap().id
        );
        // Every physical input gone: stop, and HardMute alone is never captured.
        w.unplug("USB-UID");
        w.unplug("BuiltInMicUID");
        assert_eq!(
            w.step(hal_event::CAPTURED_DEVICE_DIED | hal_event::DEVICE_LIST),
            Reaction::Stop
        );
        assert_eq!(w.captured_uid(), None);
        assert_eq!(w.step(hal_event::DEVICE_LIST), Reaction::Keep);
    }

    #[test]
    fn a_dead_captured_device_restarts_even_if_it_is_still_listed() {
        let mut w = World::new();
        // The liveness listener can fire before the device leaves the list: the AudioUnit is
        // dead either way, so the bridge restarts on what is chosen now.
        let r = w.step(hal_event::CAPTURED_DEVICE_DIED);
        assert!(matches!(r, Reaction::Restart { ref uid, .. } if uid == "BuiltInMicUID"));
    }

    #[test]
    fn release_on_mute_during_a_change_stays_muted_and_closed() {
        let mut w = World::new();
        w.muted = true;
        w.release_on_mute = true;
        w.capture.paused = true; // what apply_capture_policy did on mute
        w.plug("USB-UID", "USB Mic");
        w.set_default("USB-UID");
        assert_eq!(
            w.step(hal_event::DEFAULT_INPUT | hal_event::DEVICE_LIST),
            Reaction::Restart {
                id: 11 + 1,
                uid: "USB-UID".into(),
                open: false
            }
        );
        assert!(w.muted, "the follower never unmutes");
        assert!(w.capture.paused, "the new mic is not opened while muted");
        w.unplug("USB-UID");
        w.step(hal_event::CAPTURED_DEVICE_DIED | hal_event::DEVICE_LIST);
        assert_eq!(w.captured_uid(), Some("BuiltInMicUID"));
        assert!(w.muted && w.capture.paused);
        // Muted without release-on-mute: the mic may stay open (the plug-in delivers zeros).
        w.release_on_mute = false;
        w.plug("USB-UID", "USB Mic");
        w.set_default("USB-UID");
        assert!(matches!(
            w.step(hal_event::DEFAULT_INPUT),
            Reaction::Restart { open: true, .. }
        ));
    }

    #[test]
    fn listeners_flag_physical_mic_users_and_skip_the_daemon() {
        let p = |pid, bundle: &str, uids: &[&str]| InputProcess {
            pid,
            bundle_id: bundle.into(),
            device_uids: uids.iter().map(|s| s.to_string()).collect(),
        };
        let procs = [
            p(10, "us.zoom.xos", &[MIC_UID]),
            p(11, "", &[MIC_UID, "USB-UID"]),
            p(42, "org.hardmute.daemon", &["BuiltInMicUID"]),
        ];
        let l = listeners(&procs, 42);
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].app, "us.zoom.xos");
        assert_eq!(l[0].pid, Some(10));
        assert_eq!(l[0].target, ListenTarget::Virtual);
        assert_eq!(l[1].app, "pid 11");
        assert_eq!(
            l[1].target,
            ListenTarget::Physical {
                name: "USB-UID".into()
            }
        );
    }

    /// The daemon's on-demand loop against the scripted HAL: the physical mic follows "running
    /// somewhere" (apps starting and stopping HardMute), release-on-mute still closes it while
    /// muted, and a device switch with nobody recording keeps it closed.
    #[test]
    fn the_physical_mic_is_open_only_while_an_app_records_hardmute() {
        let mut w = World::new();
        let apply = |w: &mut World, recording: Option<bool>| {
            let open = !w.capture.paused;
            let a = capture_action(open, w.muted, w.release_on_mute, recording);
            match a {
                CaptureAction::Open => w.capture.paused = false,
                CaptureAction::Close => w.capture.paused = true,
                CaptureAction::Keep => {}
            }
            a
        };
        // Nobody records HardMute: close.
        w.app_recording = false;
        assert_eq!(apply(&mut w, Some(false)), CaptureAction::Close);
        assert_eq!(apply(&mut w, Some(false)), CaptureAction::Keep);
        // An app starts IO: open; it stops: close.
        assert_eq!(apply(&mut w, Some(true)), CaptureAction::Open);
        assert_eq!(apply(&mut w, Some(false)), CaptureAction::Close);
        // A new default mic while nobody records: the bridge moves there, still closed.
        w.plug("USB-UID", "USB Mic");
        w.set_default("USB-UID");
        assert!(matches!(
            w.step(hal_event::DEFAULT_INPUT),
            Reaction::Restart { open: false, .. }
        ));
        assert!(w.capture.paused);
        // Recording while muted with release-on-mute: stays closed until the unmute.
        w.muted = true;
        w.release_on_mute = true;
        assert_eq!(apply(&mut w, Some(true)), CaptureAction::Keep);
        w.muted = false;
        assert_eq!(apply(&mut w, Some(true)), CaptureAction::Open);
        // The HAL cannot say: keep capturing (never starve a recording app).
        assert_eq!(apply(&mut w, None), CaptureAction::Keep);
        w.capture.paused = true;
        assert_eq!(apply(&mut w, None), CaptureAction::Open);
    }
    #[test]
    fn the_guard_keeps_the_mic_open_through_on_demand_and_release_on_mute() {
        assert_eq!(capture_inputs(true, true, false), (false, true));
        assert_eq!(capture_inputs(false, true, false), (true, false));
        // With the guard on, a muted daemon with release-on-mute and no app recording keeps the
        // mic open (and so hog mode held); off, the same closes it.
        let (release, recording) = capture_inputs(true, true, false);
        assert_eq!(
            capture_action(false, true, release, Some(recording)),
            CaptureAction::Open
        );
        let (release, recording) = capture_inputs(false, true, false);
        assert_eq!(
            capture_action(true, true, release, Some(recording)),
            CaptureAction::Close
        );
    }

    #[test]
    fn hog_mode_is_toggled_only_when_that_moves_it_the_way_asked() {
        assert_eq!(hog_owner(-1, 42), HogOwner::Nobody);
        assert_eq!(hog_owner(42, 42), HogOwner::Us);
        assert_eq!(hog_owner(77, 42), HogOwner::Other(77));
        assert_eq!(hog_toggle_needed(HogOwner::Nobody, true, "mic"), Ok(true));
        assert_eq!(hog_toggle_needed(HogOwner::Us, true, "mic"), Ok(false));
        assert_eq!(hog_toggle_needed(HogOwner::Us, false, "mic"), Ok(true));
        // A blind write while nobody holds it would *take* it: releasing must not write.
        assert_eq!(hog_toggle_needed(HogOwner::Nobody, false, "mic"), Ok(false));
        assert_eq!(
            hog_toggle_needed(HogOwner::Other(77), false, "mic"),
            Ok(false)
        );
        let err = hog_toggle_needed(HogOwner::Other(77), true, "Built-in Microphone").unwrap_err();
        assert!(
            err.contains("77") && err.contains("Built-in Microphone"),
            "{err}"
        );
    }

    #[test]
    fn hog_mode_follows_the_guard_and_the_open_mic_and_never_retries_a_refusal() {
        let none = Hog::default();
        // Guard on, mic open on device 5: take it.
        assert_eq!(
            hog_plan(true, Some(5), &none),
            HogPlan {
                release: None,
                take: Some(5)
            }
        );
        // Guard off, or mic closed: nothing to take.
        assert_eq!(hog_plan(false, Some(5), &none), HogPlan::default());
        assert_eq!(hog_plan(true, None, &none), HogPlan::default());
        let held = Hog {
            held: Some(5),
            refused: None,
        };
        assert_eq!(hog_plan(true, Some(5), &held), HogPlan::default());
        // Guard off, mic closed, device changed: release (and take the new one).
        for (guard, open, take) in [
            (false, Some(5), None),
            (true, None, None),
            (true, Some(9), Some(9)),
        ] {
            assert_eq!(
                hog_plan(guard, open, &held),
                HogPlan {
                    release: Some(5),
                    take
                },
                "{guard} {open:?}"
            );
        }
        // Refused on 5: not tried again on 5 (every poll would otherwise fight the owner)...
        let refused = Hog {
            held: None,
            refused: Some((5, "process 77 holds hog mode".into())),
        };
        assert_eq!(hog_plan(true, Some(5), &refused), HogPlan::default());
        // ...but tried on another device.
        assert_eq!(hog_plan(true, Some(9), &refused).take, Some(9));
    }

    #[test]
    fn the_guard_state_holds_only_with_hog_mode_on_the_open_device() {
        let g = guard_state(false, Some(5), &Hog::default());
        assert!(!g.on && !g.holds && g.why_not.is_none());
        let held = Hog {
            held: Some(5),
            refused: None,
        };
        let g = guard_state(true, Some(5), &held);
        assert!(g.on && g.holds && g.why_not.is_none(), "{g:?}");
        let g = guard_state(true, None, &held);
        assert!(!g.holds && g.why_not.unwrap().contains("no physical mic"));
        let refused = Hog {
            held: None,
            refused: Some((5, "process 77 holds hog mode".into())),
        };
        let g = guard_state(true, Some(5), &refused);
        assert!(!g.holds);
        assert_eq!(g.why_not.as_deref(), Some("process 77 holds hog mode"));
        let g = guard_state(true, Some(9), &refused);
        assert!(!g.holds && g.why_not.unwrap().contains("not taken"));
    }
    /// A scripted HAL with the property's toggle rule: nobody -> caller, caller -> nobody,
    /// another owner stays. Counts writes.
    struct ScriptedHal {
        caller: i32,
        owners: std::cell::RefCell<std::collections::HashMap<u32, i32>>,
        writes: std::cell::Cell<u32>,
    }

    impl ScriptedHal {
        fn new(caller: i32, owners: &[(u32, i32)]) -> Self {
            ScriptedHal {
                caller,
                owners: std::cell::RefCell::new(owners.iter().copied().collect()),
                writes: std::cell::Cell::new(0),
            }
        }
        fn owner_of(&self, id: u32) -> i32 {
            self.owners.borrow()[&id]
        }
    }

    impl HogHal for ScriptedHal {
        fn owner(&self, device: u32) -> Result<i32, String> {
            self.owners
                .borrow()
                .get(&device)
                .copied()
                .ok_or_else(|| "kAudioHardwareBadObjectError".into())
        }
        fn toggle(&self, device: u32) -> Result<i32, String> {
            self.writes.set(self.writes.get() + 1);
            let mut owners = self.owners.borrow_mut();
            let owner = owners
                .get_mut(&device)
                .ok_or("kAudioHardwareBadObjectError")?;
            *owner = match *owner {
                -1 => self.caller,
                o if o == self.caller => -1,
                o => o,
            };
            Ok(*owner)
        }
    }

    #[test]
    fn hog_mode_against_a_scripted_hal_takes_releases_and_never_fights() {
        let own = 42;
        let name = |id: u32| format!("mic {id}");
        let hal = ScriptedHal::new(own, &[(5, -1), (9, -1), (7, 77)]);
        let mut hog = Hog::default();
        // Guard on, mic open on 5: taken with one write; applying again writes nothing.
        apply_hog(&hal, true, Some(5), own, name, &mut hog);
        assert_eq!(
            (hal.owner_of(5), hog.held, hal.writes.get()),
            (own, Some(5), 1)
        );
        apply_hog(&hal, true, Some(5), own, name, &mut hog);
        assert_eq!(hal.writes.get(), 1);
        assert!(guard_state(true, Some(5), &hog).holds);
        // The device changes to 9: released on 5, taken on 9.
        apply_hog(&hal, true, Some(9), own, name, &mut hog);
        assert_eq!(
            (hal.owner_of(5), hal.owner_of(9), hog.held),
            (-1, own, Some(9))
        );
        // Guard off: released; nothing written after that while nobody holds it.
        apply_hog(&hal, false, Some(9), own, name, &mut hog);
        assert_eq!((hal.owner_of(9), hog.held), (-1, None));
        let writes = hal.writes.get();
        apply_hog(&hal, false, Some(9), own, name, &mut hog);
        assert_eq!(
            hal.writes.get(),
            writes,
            "a release never writes while nobody holds it"
        );
        // Another process (77) hogs device 7: refused, reported, never written, not retried.
        apply_hog(&hal, true, Some(7), own, name, &mut hog);
        for _ in 0..10 {
            apply_hog(&hal, true, Some(7), own, name, &mut hog);
        }
        assert_eq!(hal.owner_of(7), 77);
        assert_eq!(hal.writes.get(), writes, "another owner is never fought");
        let g = guard_state(true, Some(7), &hog);
        assert!(!g.holds && g.why_not.unwrap().contains("process 77"));
        // A device that vanished while held: the release reads nothing, writes nothing, and the
        // guard moves on.
        let mut hog = Hog {
            held: Some(3),
            refused: None,
        };
        apply_hog(&hal, true, Some(5), own, name, &mut hog);
        assert_eq!((hog.held, hal.owner_of(5)), (Some(5), own));
    }
}
