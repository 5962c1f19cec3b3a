//! Decisions the bridge makes, apart from the CoreAudio calls that gather their inputs (so they
//! are tested on Linux): which device to capture, and who is listening.

/// The UID prefix of the plug-in's own devices (see hardmute-hal-plugin's model).
pub const OWN_UID_PREFIX: &str = "org.hardmute.";
/// The plug-in's feed device, which the bridge plays into.
pub const FEED_UID: &str = "org.hardmute.feed";
/// The virtual microphone apps record from.
pub const MIC_UID: &str = "org.hardmute.microphone";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputDevice {
    pub id: u32,
    pub uid: String,
    pub name: String,
    /// The system's default input device.
    pub is_default: bool,
}

pub fn is_own(uid: &str) -> bool {
    uid.starts_with(OWN_UID_PREFIX)
}

/// The physical mic to capture: the user's default input — unless that is HardMute's own
/// microphone (the usual case once HardMute is the default input), then the input the user chose
/// before (`preferred_uid`, remembered by the daemon) if present, else the first other input.
/// Never our own devices: capturing HardMute into HardMute would loop.
pub fn choose_capture_device<'a>(
    devices: &'a [InputDevice],
    preferred_uid: Option<&str>,
) -> Option<&'a InputDevice> {
    let candidates = || devices.iter().filter(|d| !is_own(&d.uid));
    candidates()
        .find(|d| d.is_default)
        .or_else(|| preferred_uid.and_then(|p| candidates().find(|d| d.uid == p)))
        .or_else(|| candidates().next())
}

/// What the daemon does when it re-reads the device list (default-input change, hot-plug).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Follow {
    /// Keep capturing the current device.
    Keep,
    /// Restart the bridge on this device (the new default input, or a fallback).
    Switch { id: u32, uid: String },
    /// No physical input left: stop the bridge; the plug-in delivers zeros (fail closed).
    Stop,
}

/// Follows the user's default input: switch when the choice differs from what is captured now.
pub fn follow(
    current_uid: Option<&str>,
    devices: &[InputDevice],
    preferred_uid: Option<&str>,
) -> Follow {
    match choose_capture_device(devices, preferred_uid) {
        None => Follow::Stop,
        Some(d) if Some(d.uid.as_str()) == current_uid => Follow::Keep,
        Some(d) => Follow::Switch {
            id: d.id,
            uid: d.uid.clone(),
        },
    }
}

/// Whether to stop capturing from the physical mic now. With `release_on_mute`, the bridge lets go
/// of the physical mic while hard-muted (the OS microphone indicator goes off); the plug-in keeps
/// delivering zeros either way.
pub fn should_capture(hard_muted: bool, release_on_mute: bool, anyone_recording: bool) -> bool {
    anyone_recording && !(hard_muted && release_on_mute)
}

/// A process the HAL reports as running input (macOS 14+: kAudioHardwarePropertyProcessObjectList
/// with kAudioProcessPropertyIsRunningInput and kAudioProcessPropertyDevices).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputProcess {
    pub pid: i32,
    pub bundle_id: String,
    /// UIDs of the input devices the process is using.
    pub device_uids: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listening {
    /// Records from the HardMute Microphone: gated by hard mute.
    ThroughHardMute,
    /// Records from a physical input directly: NOT covered by hard mute — show it to the user.
    PhysicalMicDirectly,
}

/// Who is listening, with the daemon's own capture left out.
pub fn listeners(processes: &[InputProcess], daemon_pid: i32) -> Vec<(InputProcess, Listening)> {
    processes
        .iter()
        .filter(|p| p.pid != daemon_pid)
        .map(|p| {
            let direct = p.device_uids.iter().any(|u| !is_own(u)) || p.device_uids.is_empty();
            let kind = if direct {
                Listening::PhysicalMicDirectly
            } else {
                Listening::ThroughHardMute
            };
            (p.clone(), kind)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(id: u32, uid: &str, default: bool) -> InputDevice {
        InputDevice {
            id,
            uid: uid.into(),
            name: uid.into(),
            is_default: default,
        }
    }

    #[test]
    fn captures_the_default_input_but_never_our_own_devices() {
        let devs = [
            dev(1, "BuiltInMic", false),
            dev(2, MIC_UID, true),
            dev(3, "USB-Mic", false),
        ];
        // HardMute is the default input: fall back to the remembered choice, then the first other.
        assert_eq!(choose_capture_device(&devs, Some("USB-Mic")).unwrap().id, 3);
        assert_eq!(choose_capture_device(&devs, Some("gone")).unwrap().id, 1);
        assert_eq!(choose_capture_device(&devs, None).unwrap().id, 1);
        let devs = [dev(1, "BuiltInMic", false), dev(3, "USB-Mic", true)];
        assert_eq!(
            choose_capture_device(&devs, Some("BuiltInMic")).unwrap().id,
            3
        );
        assert!(
            choose_capture_device(&[dev(2, MIC_UID, true), dev(4, FEED_UID, false)], None)
                .is_none()
        );
    }

    #[test]
    fn follows_default_input_changes_and_fails_closed_when_none_is_left() {
        let a = [dev(1, "BuiltInMic", true), dev(3, "USB-Mic", false)];
        assert_eq!(follow(Some("BuiltInMic"), &a, None), Follow::Keep);
        let b = [dev(1, "BuiltInMic", false), dev(3, "USB-Mic", true)];
        assert_eq!(
            follow(Some("BuiltInMic"), &b, None),
            Follow::Switch {
                id: 3,
                uid: "USB-Mic".into()
            }
        );
        // The USB mic is unplugged while HardMute is the default: back to the remembered choice.
        let c = [dev(1, "BuiltInMic", false), dev(2, MIC_UID, true)];
        assert_eq!(
            follow(Some("USB-Mic"), &c, Some("BuiltInMic")),
            Follow::Switch {
                id: 1,
                uid: "BuiltInMic".into()
            }
        );
        assert_eq!(
            follow(Some("BuiltInMic"), &[dev(2, MIC_UID, true)], None),
            Follow::Stop
        );
    }

    #[test]
    fn release_on_mute_stops_capture_only_while_muted() {
        assert!(should_capture(false, true, true));
        assert!(!should_capture(true, true, true));
        assert!(should_capture(true, false, true));
        assert!(!should_capture(false, false, false));
    }

    #[test]
    fn flags_processes_that_bypass_hardmute() {
        let p = |pid, uids: &[&str]| InputProcess {
            pid,
            bundle_id: format!("app{pid}"),
            device_uids: uids.iter().map(|s| s.to_string()).collect(),
        };
        let procs = [
            p(10, &[MIC_UID]),
            p(11, &["BuiltInMic"]),
            p(12, &[MIC_UID, "USB-Mic"]),
            p(99, &["BuiltInMic"]),
        ];
        let l = listeners(&procs, 99);
        assert_eq!(l.len(), 3, "the daemon's own capture is not a listener");
        assert_eq!(l[0].1, Listening::ThroughHardMute);
        assert_eq!(l[1].1, Listening::PhysicalMicDirectly);
        assert_eq!(l[2].1, Listening::PhysicalMicDirectly);
    }
}
