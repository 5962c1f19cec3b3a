//! The macOS backend's decisions that the bridge crate's `policy` does not already make, apart
//! from the CoreAudio calls (compiled and tested on every platform): how the daemon names the
//! physical inputs, which one to capture given the user's selection, and how the HAL's process
//! list becomes `Listener`s.

use super::BackendError;
use hardmute_ipc::{InputDevice, ListenTarget, Listener};
use hardmute_macos_bridge::policy::{self as bridge, InputProcess, Listening};

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
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hardmute_macos_bridge::policy::{FEED_UID, MIC_UID};

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
}
