//! Daemon state -> what the panel and tray show. Pure functions, tested without a display.

use hardmute_ipc::{DaemonOption, InputDevice, ListenTarget, Listener, State};

/// The first device-chooser entry: follow the OS default input.
pub const DEFAULT_DEVICE_LABEL: &str = "System default input";

/// One line under the state button: who changed it last and what runs the virtual mic.
pub fn status_line(state: &State) -> String {
    let mic = if state.physical_open {
        "physical mic open"
    } else {
        "physical mic released"
    };
    // The default input and the owner are said in banners of their own (with their fix).
    format!(
        "{} by {} · backend {} · {}",
        if state.muted { "Muted" } else { "Live" },
        state.source,
        state.backend,
        mic
    )
}

/// Said plainly when the OS's default input is not HardMute: apps that record "the default"
/// hear the room whatever the mute says. `None` when protected (or unknown).
pub fn default_input_note(state: &State) -> Option<String> {
    (state.default_input_protected == Some(false)).then(|| {
        format!(
            "⚠ Apps on the default input are NOT protected: the default input is {}, not the \
             HardMute Microphone, so apps that record the default hear the room even while muted.",
            state.default_input.as_deref().unwrap_or("another input")
        )
    })
}

/// Said when the driver refused this user control of the virtual mic: another user owns it.
/// This user may add mute; only the owner can unmute. `None` when this user owns it.
pub fn owner_note(state: &State) -> Option<String> {
    state.not_owner.as_deref().map(|why| {
        format!(
            "Another user of this computer owns the HardMute Microphone: only that user can \
             unmute it. You can still mute it. ({why})"
        )
    })
}

/// Whether an unmute can work: not when another user owns the device (the driver refuses it).
pub fn can_unmute(state: &State) -> bool {
    state.not_owner.is_none()
}

/// The tray's tooltip: the state first (MUTED / LIVE / NO DAEMON), then what the user must
/// know about it, in plain words.
pub fn tray_tooltip(state: Option<&State>) -> String {
    let Some(state) = state else {
        return "HardMute: NO DAEMON".into();
    };
    let mut text = format!("HardMute: {}", if state.muted { "MUTED" } else { "LIVE" });
    if state.not_owner.is_some() {
        text.push_str(" — another user owns the microphone: only they can unmute it");
    }
    if state.default_input_protected == Some(false) {
        text.push_str(
            " — apps on the default input are NOT protected (fix: \"Protect the default input\")",
        );
    }
    text
}

/// The physical-mic guard as the Protection tab shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GuardView {
    /// The toggle is offered: this hardmuted holds the guard itself (macOS hog mode, Windows
    /// exclusive mode, the simulated backend), so `State.guard` is there.
    pub toggle: bool,
    /// The daemon's setting (what the toggle shows).
    pub on: bool,
    /// The line under the toggle; without a toggle, what to do instead (Linux: the CLI).
    pub line: String,
    /// On but not holding the mic: the line is a warning.
    pub warning: bool,
}

/// What the Linux panel says instead of a toggle: there the guard is PipeWire and WirePlumber
/// configuration, written by the CLI (which restarts both), not a daemon setting.
pub const GUARD_LINUX_NOTE: &str = "On Linux the guard is PipeWire and WirePlumber \
     configuration, not a panel setting: run `hardmute guard on` in a terminal (`hardmute guard \
     off` undoes it; docs/threat-model.md says what it closes and what stays open).";

/// The guard's control from the daemon's state: a toggle only when the state carries `guard`.
/// `linux`: the panel runs on Linux, where a state without `guard` means "use the CLI".
pub fn guard_view(state: Option<&State>, linux: bool) -> GuardView {
    let Some(state) = state else {
        return GuardView::default();
    };
    match &state.guard {
        None if linux => GuardView {
            line: GUARD_LINUX_NOTE.to_owned(),
            ..GuardView::default()
        },
        None => GuardView {
            line: format!(
                "hardmuted's {} backend has no physical-mic guard (docs/threat-model.md).",
                state.backend
            ),
            ..GuardView::default()
        },
        Some(guard) if !guard.on => GuardView {
            toggle: true,
            on: false,
            line: "Off: any app may open a physical mic directly, around the mute.".to_owned(),
            warning: false,
        },
        Some(guard) if guard.holds => GuardView {
            toggle: true,
            on: true,
            line: "On: hardmuted holds the physical mic; other apps are refused it.".to_owned(),
            warning: false,
        },
        // The daemon's reason verbatim: it names who holds the mic or what the OS refused.
        Some(guard) => GuardView {
            toggle: true,
            on: true,
            line: format!(
                "⚠ On, but NOT holding the physical mic: {}",
                guard.why_not.as_deref().unwrap_or("reason unknown")
            ),
            warning: true,
        },
    }
}

/// What a click on the guard toggle asks the daemon for: the option `hardmute guard on|off`
/// sends. `Err` (said, nothing sent) when there is no daemon or it holds no guard.
pub fn guard_request(state: Option<&State>, on: bool) -> Result<DaemonOption, String> {
    match state {
        None => Err("hardmuted is not running: the guard cannot be changed now.".to_owned()),
        Some(state) if state.guard.is_none() => Err(format!(
            "hardmuted's {} backend has no guard to switch.",
            state.backend
        )),
        Some(_) => Ok(DaemonOption::Guard(on)),
    }
}

/// A refused or failed guard request, as the panel says it (the daemon's words kept).
pub fn guard_error(why: &str) -> String {
    format!("⚠ The guard was not changed: {why}")
}

/// The device chooser: labels (entry 0 = system default), the name behind each entry, and
/// the entry matching the daemon's current device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceChoices {
    pub labels: Vec<String>,
    pub names: Vec<Option<String>>,
    pub selected: usize,
}

pub fn device_choices(devices: &[InputDevice], current: Option<&str>) -> DeviceChoices {
    let mut labels = vec![DEFAULT_DEVICE_LABEL.to_owned()];
    let mut names = vec![None];
    for device in devices {
        let mut label = device.description.clone();
        if device.is_default {
            label.push_str(" (default)");
        }
        labels.push(label);
        names.push(Some(device.name.clone()));
    }
    let selected = match current {
        None => 0,
        Some(current) => match names.iter().position(|n| n.as_deref() == Some(current)) {
            Some(index) => index,
            // The daemon uses a device it did not list (it vanished): show it rather than lie.
            None => {
                labels.push(format!("{current} (unavailable)"));
                names.push(Some(current.to_owned()));
                names.len() - 1
            }
        },
    };
    DeviceChoices {
        labels,
        names,
        selected,
    }
}

/// One row of the "who is listening" list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerView {
    pub app: String,
    pub target: String,
    /// Captures a physical mic directly, so HardMute cannot mute it.
    pub direct: bool,
}

/// Listener rows (direct captures first) and the sentence above them.
pub fn listener_rows(listeners: &[Listener]) -> (Vec<ListenerView>, usize, String) {
    let mut rows: Vec<ListenerView> = listeners
        .iter()
        .map(|l| {
            let app = match l.pid {
                Some(pid) => format!("{} (pid {pid})", l.app),
                None => l.app.clone(),
            };
            match &l.target {
                ListenTarget::Virtual => ListenerView {
                    app,
                    target: "HardMute Microphone".into(),
                    direct: false,
                },
                // HardMute's own bridge must hold the physical mic: that is how audio reaches
                // the virtual one (the backend marks it `own` by the OS-verified pid, not by
                // name). Anything else there bypasses the hard mute.
                ListenTarget::Physical { name } => ListenerView {
                    direct: !l.own,
                    app,
                    target: name.clone(),
                },
            }
        })
        .collect();
    rows.sort_by_key(|r| !r.direct);
    let direct = rows.iter().filter(|r| r.direct).count();
    let note = match (rows.len(), direct) {
        (0, _) => "No app is using a microphone.".to_owned(),
        (_, 0) => "Every app listens through HardMute.".to_owned(),
        (_, 1) => "Warning: 1 app captures a physical mic directly — HardMute cannot mute it. Switch it to \"HardMute Microphone\".".to_owned(),
        (_, n) => format!("Warning: {n} apps capture a physical mic directly — HardMute cannot mute them. Switch them to \"HardMute Microphone\"."),
    };
    (rows, direct, note)
}

/// What the level-meter line says when no meter is drawn (the meter shows only while live).
pub fn level_note(
    connected: bool,
    level_feed: bool,
    physical_open: bool,
    muted: bool,
) -> &'static str {
    if !connected {
        ""
    } else if !physical_open {
        "physical mic released while muted — nothing to measure"
    } else if !level_feed {
        "not available: this hardmuted has no level feed"
    } else if muted {
        "hidden while muted: no level leaves hardmuted while muted"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hardmute_ipc::{ChangeSource, Counters, GuardState};

    fn state(muted: bool, physical_open: bool) -> State {
        State {
            muted,
            generation: 3,
            source: ChangeSource::Hotkey,
            backend: "simulated".into(),
            device: None,
            release_on_mute: !physical_open,
            start_muted: false,
            fade_ms: 5,
            hotkey: None,
            hotkey_mode: Default::default(),
            physical_open,
            counters: Counters::default(),
            not_owner: None,
            default_input: None,
            default_input_protected: None,
            guard: None,
        }
    }

    fn listener(app: &str, target: ListenTarget) -> Listener {
        Listener {
            app: app.into(),
            pid: Some(7),
            binary: None,
            own: app == "hardmuted bridge",
            target,
        }
    }

    #[test]
    fn status_line_names_the_source_and_the_mic() {
        assert_eq!(
            status_line(&state(true, false)),
            "Muted by hotkey · backend simulated · physical mic released"
        );
        assert!(status_line(&state(false, true)).starts_with("Live by hotkey"));
        let mut s = state(true, true);
        s.default_input_protected = Some(true);
        assert_eq!(default_input_note(&s), None);
        s.default_input_protected = Some(false);
        s.default_input = Some("usb".into());
        assert!(default_input_note(&s).unwrap().starts_with(
            "⚠ Apps on the default input are NOT protected: the default input is usb,"
        ));
        assert!(
            !status_line(&s).contains("NOT protected"),
            "said in its banner"
        );
    }

    #[test]
    fn tray_and_panel_say_when_the_default_is_unprotected_or_another_user_owns_the_mic() {
        assert_eq!(tray_tooltip(None), "HardMute: NO DAEMON");
        let mut s = state(true, true);
        assert_eq!(tray_tooltip(Some(&s)), "HardMute: MUTED");
        assert!(can_unmute(&s));
        assert_eq!(owner_note(&s), None);
        s.default_input_protected = Some(false);
        assert_eq!(
            tray_tooltip(Some(&s)),
            "HardMute: MUTED — apps on the default input are NOT protected (fix: \"Protect the default input\")"
        );
        s.default_input_protected = None;
        assert_eq!(
            tray_tooltip(Some(&s)),
            "HardMute: MUTED",
            "unknown is not said as unprotected"
        );
        s.not_owner = Some("uid 501 owns it".into());
        assert!(!can_unmute(&s), "the driver would refuse the unmute");
        assert_eq!(
            tray_tooltip(Some(&s)),
            "HardMute: MUTED — another user owns the microphone: only they can unmute it"
        );
        let note = owner_note(&s).unwrap();
        assert!(note.contains("only that user can unmute"), "{note}");
        assert!(note.contains("You can still mute it"), "{note}");
        assert!(note.ends_with("(uid 501 owns it)"), "{note}");
        s.muted = false;
        assert!(tray_tooltip(Some(&s)).starts_with("HardMute: LIVE — another user"));
    }

    fn guarded(on: bool, holds: bool, why_not: Option<&str>) -> State {
        State {
            guard: Some(GuardState {
                on,
                holds,
                why_not: why_not.map(Into::into),
            }),
            ..state(true, true)
        }
    }

    #[test]
    fn the_guard_toggle_is_shown_only_when_the_daemon_holds_a_guard() {
        // No daemon: nothing (no toggle, no line), on any OS.
        assert_eq!(guard_view(None, true), GuardView::default());
        assert_eq!(guard_view(None, false), GuardView::default());
        // No `guard` in the state (the Linux backend): no toggle; on Linux, the CLI is the way.
        let linux = guard_view(Some(&state(true, true)), true);
        assert!(!linux.toggle && !linux.on && !linux.warning);
        assert_eq!(linux.line, GUARD_LINUX_NOTE);
        assert!(linux.line.contains("`hardmute guard on` in a terminal"));
        // Elsewhere a state without `guard` is a backend without one: said, not a Linux hint.
        let other = guard_view(Some(&state(true, true)), false);
        assert!(!other.toggle);
        assert_eq!(
            other.line,
            "hardmuted's simulated backend has no physical-mic guard (docs/threat-model.md)."
        );
        // With `guard` (macOS, Windows, simulated): the toggle, on Linux as well.
        for linux in [true, false] {
            let off = guard_view(Some(&guarded(false, false, None)), linux);
            assert!(off.toggle && !off.on && !off.warning, "{off:?}");
            assert!(off.line.starts_with("Off:"), "{}", off.line);
        }
    }

    #[test]
    fn the_guard_line_says_whether_it_holds_and_why_not_in_the_daemons_words() {
        let holds = guard_view(Some(&guarded(true, true, None)), false);
        assert!(holds.toggle && holds.on && !holds.warning);
        assert_eq!(
            holds.line,
            "On: hardmuted holds the physical mic; other apps are refused it."
        );
        let why = "the physical mic is hogged by pid 77 (simulated)";
        let taken = guard_view(Some(&guarded(true, false, Some(why))), false);
        assert!(taken.toggle && taken.on && taken.warning);
        assert_eq!(
            taken.line,
            format!("⚠ On, but NOT holding the physical mic: {why}")
        );
        let unknown = guard_view(Some(&guarded(true, false, None)), false);
        assert!(unknown.warning && unknown.line.ends_with("reason unknown"));
    }

    #[test]
    fn the_guard_toggle_sends_the_daemon_option_and_nothing_without_a_guard() {
        let off = guarded(false, false, None);
        assert_eq!(
            guard_request(Some(&off), true),
            Ok(DaemonOption::Guard(true))
        );
        let on = guarded(true, true, None);
        assert_eq!(
            guard_request(Some(&on), false),
            Ok(DaemonOption::Guard(false))
        );
        let err = guard_request(Some(&state(true, true)), true).unwrap_err();
        assert!(err.contains("no guard"), "{err}");
        let err = guard_request(None, true).unwrap_err();
        assert!(err.contains("not running"), "{err}");
        assert_eq!(
            guard_error("not the owner"),
            "⚠ The guard was not changed: not the owner"
        );
    }

    #[test]
    fn device_chooser_selects_the_current_device_or_shows_a_vanished_one() {
        let devices = vec![
            InputDevice {
                name: "usb".into(),
                description: "USB mic".into(),
                is_default: false,
            },
            InputDevice {
                name: "builtin".into(),
                description: "Built-in".into(),
                is_default: true,
            },
        ];
        let none = device_choices(&devices, None);
        assert_eq!(none.selected, 0);
        assert_eq!(
            none.labels,
            ["System default input", "USB mic", "Built-in (default)"]
        );
        let usb = device_choices(&devices, Some("usb"));
        assert_eq!(usb.names[usb.selected].as_deref(), Some("usb"));
        let gone = device_choices(&devices, Some("bt-headset"));
        assert_eq!(gone.labels[gone.selected], "bt-headset (unavailable)");
        assert_eq!(gone.names[gone.selected].as_deref(), Some("bt-headset"));
    }

    #[test]
    fn direct_capture_of_a_physical_mic_is_flagged_but_our_bridge_is_not() {
        let (rows, direct, note) = listener_rows(&[
            listener("zoom", ListenTarget::Virtual),
            listener(
                "hardmuted bridge",
                ListenTarget::Physical { name: "hw0".into() },
            ),
            listener("spyware", ListenTarget::Physical { name: "hw0".into() }),
            // Named like HardMute but not marked own by the backend: still flagged.
            Listener {
                own: false,
                ..listener("hardmute", ListenTarget::Physical { name: "hw0".into() })
            },
        ]);
        assert_eq!(direct, 2);
        assert_eq!(rows[0].app, "spyware (pid 7)", "direct captures come first");
        assert!(rows[0].direct);
        assert!(rows
            .iter()
            .filter(|r| r.app.starts_with("hardmuted bridge"))
            .all(|r| !r.direct));
        assert!(rows.iter().any(|r| r.app == "hardmute (pid 7)" && r.direct));
        assert!(note.starts_with("Warning: 2 apps"), "{note}");

        let (_, direct, note) = listener_rows(&[listener("zoom", ListenTarget::Virtual)]);
        assert_eq!(
            (direct, note.as_str()),
            (0, "Every app listens through HardMute.")
        );
        assert_eq!(listener_rows(&[]).2, "No app is using a microphone.");
    }

    #[test]
    fn level_note_explains_a_hidden_meter() {
        assert!(level_note(true, true, false, true).contains("released"));
        assert!(level_note(true, false, true, false).contains("no level feed"));
        assert!(level_note(true, true, true, true).contains("while muted"));
        assert_eq!(level_note(true, true, true, false), "");
        assert_eq!(level_note(false, true, true, false), "");
    }
}
