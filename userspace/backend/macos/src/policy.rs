//! Decisions the bridge makes, apart from the CoreAudio calls that gather their inputs (so they
//! are tested on Linux): which device to capture, and who is listening.

pub use hardmute_macos_contract::{is_own_uid as is_own, FEED_UID, MIC_UID};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputDevice {
    pub id: u32,
    pub uid: String,
    pub name: String,
    /// The system's default input device.
    pub is_default: bool,
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

// ---- HAL property notifications -----------------------------------------------------------------

/// kAudioHardwarePropertyDefaultInputDevice (`'dIn '`), on the system object.
pub const SELECTOR_DEFAULT_INPUT: u32 = u32::from_be_bytes(*b"dIn ");
/// kAudioHardwarePropertyDevices (`'dev#'`), on the system object: hot-plug.
pub const SELECTOR_DEVICES: u32 = u32::from_be_bytes(*b"dev#");
/// kAudioDevicePropertyDeviceIsAlive (`'livn'`), on the captured device: it went away.
pub const SELECTOR_DEVICE_IS_ALIVE: u32 = u32::from_be_bytes(*b"livn");
/// kAudioDevicePropertyDeviceIsRunningSomewhere (`'gone'`), on the HardMute Microphone: an app
/// started or stopped recording it (the plug-in announces its first StartIO and last StopIO).
pub const SELECTOR_DEVICE_IS_RUNNING_SOMEWHERE: u32 = u32::from_be_bytes(*b"gone");

/// What the HAL said changed, as bits in [`HalSignals`].
pub mod hal_event {
    /// The user (or the system) chose another default input.
    pub const DEFAULT_INPUT: u32 = 1 << 0;
    /// A device appeared or disappeared.
    pub const DEVICE_LIST: u32 = 1 << 1;
    /// The device being captured is no longer alive (unplugged): its AudioUnit delivers nothing
    /// any more, so the bridge restarts on whatever is chosen now, even a device with its UID.
    pub const CAPTURED_DEVICE_DIED: u32 = 1 << 2;
    /// Apps started or stopped recording the HardMute Microphone: open or close the physical mic.
    pub const MIC_RUNNING: u32 = 1 << 3;
}

/// The event bits for the property addresses a listener was called with. The HAL may also pass
/// addresses we did not sign up for; those map to nothing.
pub fn event_bits(selectors: impl Iterator<Item = u32>) -> u32 {
    selectors.fold(0, |bits, selector| {
        bits | match selector {
            SELECTOR_DEFAULT_INPUT => hal_event::DEFAULT_INPUT,
            SELECTOR_DEVICES => hal_event::DEVICE_LIST,
            SELECTOR_DEVICE_IS_ALIVE => hal_event::CAPTURED_DEVICE_DIED,
            SELECTOR_DEVICE_IS_RUNNING_SOMEWHERE => hal_event::MIC_RUNNING,
            _ => 0,
        }
    })
}

/// The only thing a HAL property listener does: OR event bits into an atomic (no allocation, no
/// lock, no syscall). The daemon takes them on its own thread and decides there.
#[derive(Debug, Default)]
pub struct HalSignals {
    pending: core::sync::atomic::AtomicU32,
}

impl HalSignals {
    pub const fn new() -> Self {
        HalSignals {
            pending: core::sync::atomic::AtomicU32::new(0),
        }
    }

    /// Called on the HAL's notification thread.
    pub fn signal(&self, bits: u32) {
        if bits != 0 {
            self.pending
                .fetch_or(bits, core::sync::atomic::Ordering::Release);
        }
    }

    /// Everything signalled since the last call (0 = nothing happened).
    pub fn take(&self) -> u32 {
        self.pending.swap(0, core::sync::atomic::Ordering::Acquire)
    }
}

/// The daemon's one set of HAL signals (its listeners pass no client data, so a late callback
/// after a listener is removed can never touch freed memory).
pub static HAL_SIGNALS: HalSignals = HalSignals::new();

/// AudioObjectPropertyAddress as the HAL passes it to a listener (the macOS module asserts it
/// matches objc2-core-audio's type, and hands the listener's array over as this).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PropertyAddress {
    pub selector: u32,
    pub scope: u32,
    pub element: u32,
}
const _: () = {
    assert!(core::mem::size_of::<PropertyAddress>() == 12);
    assert!(core::mem::align_of::<PropertyAddress>() == 4);
    assert!(core::mem::offset_of!(PropertyAddress, selector) == 0);
    assert!(core::mem::offset_of!(PropertyAddress, scope) == 4);
    assert!(core::mem::offset_of!(PropertyAddress, element) == 8);
};

/// The body of the HAL property listener: map the addresses to event bits and signal them. Runs
/// on the HAL's notification thread: reads the array, one atomic OR; cannot panic.
///
/// # Safety
/// `addresses` points to `count` readable addresses (or `count` is 0).
pub unsafe fn on_properties_changed(
    signals: &HalSignals,
    count: u32,
    addresses: *const PropertyAddress,
) {
    if addresses.is_null() || count == 0 {
        return;
    }
    // SAFETY: the caller (the HAL) passes `count` valid addresses for the duration of the call.
    let addresses = unsafe { core::slice::from_raw_parts(addresses, count as usize) };
    signals.signal(event_bits(addresses.iter().map(|a| a.selector)));
}

/// Whether to capture from the physical mic now: only while some app records the HardMute
/// Microphone (on-demand: otherwise the OS's "mic in use" signals would name hardmuted all day),
/// and, with `release_on_mute`, not while hard-muted (the OS microphone indicator goes off); the
/// plug-in keeps delivering zeros either way.
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
    fn listener_addresses_become_event_bits_and_unknown_selectors_none() {
        assert_eq!(
            event_bits([SELECTOR_DEFAULT_INPUT].into_iter()),
            hal_event::DEFAULT_INPUT
        );
        assert_eq!(
            event_bits(
                [
                    SELECTOR_DEVICES,
                    u32::from_be_bytes(*b"nsrt"),
                    SELECTOR_DEVICE_IS_ALIVE
                ]
                .into_iter()
            ),
            hal_event::DEVICE_LIST | hal_event::CAPTURED_DEVICE_DIED
        );
        assert_eq!(event_bits([u32::from_be_bytes(*b"nsrt")].into_iter()), 0);
        assert_eq!(event_bits(core::iter::empty()), 0);
        assert_eq!(
            event_bits([SELECTOR_DEVICE_IS_RUNNING_SOMEWHERE].into_iter()),
            hal_event::MIC_RUNNING
        );
    }

    #[test]
    fn signals_accumulate_until_taken_once() {
        let s = HalSignals::new();
        assert_eq!(s.take(), 0);
        s.signal(hal_event::DEFAULT_INPUT);
        s.signal(hal_event::DEVICE_LIST);
        s.signal(0);
        assert_eq!(s.take(), hal_event::DEFAULT_INPUT | hal_event::DEVICE_LIST);
        assert_eq!(s.take(), 0, "taking clears");
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
