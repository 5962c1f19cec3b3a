//! The panel's hotkey through the GlobalShortcuts portal (the Wayland path), against the
//! portal crate's stand-in portal on a private dbus-daemon: the daemon's hotkey is sent as the
//! preferred trigger, the desktop's presses reach the daemon link as requests, push-to-talk
//! held when the session ends is muted, and a new hotkey closes the old session.
//!
//! The stand-in is written from the portal documentation; a real GNOME/KDE backend is not
//! involved (see userspace/portal-shortcuts/README.md).

#![cfg(target_os = "linux")]

#[path = "../../portal-shortcuts/tests/fake_portal/mod.rs"]
mod fake_portal;

use fake_portal::{Answer, FakePortal, PrivateBus};
use hardmute_ipc::ChangeSource;
use hardmute_panel::app::HotkeyAgent;
use hardmute_panel::hotkey::{HotkeyMode, HotkeySpec};
use hardmute_panel::link::LinkCommand;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(5);

fn wait_until(mut ok: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < WAIT {
        if ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// The session bound with `trigger` as some shortcut's preferred trigger.
fn session_with_trigger(portal: &FakePortal, trigger: &str) -> Option<String> {
    portal
        .log
        .lock()
        .shortcuts
        .iter()
        .find(|(_, bound)| bound.iter().any(|(_, _, t)| t.as_deref() == Some(trigger)))
        .map(|(session, _)| session.clone())
}

#[test]
fn portal_presses_reach_the_daemon_link_and_a_held_push_to_talk_ends_muted() {
    let bus = PrivateBus::start();
    let portal = FakePortal::start(&bus, 2, Answer::Grant);
    let (link, commands) = mpsc::channel();
    let mut agent =
        HotkeyAgent::with_portal(Some(bus.address.clone()), link).expect("the portal answers");
    assert!(agent.uses_portal());
    let (status_tx, status) = mpsc::channel();
    agent.set_status_sink(std::sync::Arc::new(move |text| {
        let _ = status_tx.send(text);
    }));

    let spec = HotkeySpec::parse("Ctrl+Alt+M").unwrap();
    let asking = agent.apply(spec, HotkeyMode::Toggle).unwrap();
    assert!(asking.contains("Asking the desktop"), "{asking}");
    let bound = status
        .recv_timeout(WAIT)
        .expect("the outcome of the binding");
    assert!(bound.contains("toggle: CTRL+ALT+m"), "{bound}");
    assert!(wait_until(|| agent.is_grabbing()));
    let session = session_with_trigger(&portal, "CTRL+ALT+m").expect("bound with our trigger");

    // Toggle: a press is one toggle, its release nothing.
    portal.emit("Activated", &session, "toggle-mute");
    portal.emit("Deactivated", &session, "toggle-mute");
    assert_eq!(
        commands.recv_timeout(WAIT).unwrap(),
        LinkCommand::Toggle(ChangeSource::Hotkey)
    );
    // Push-to-talk: live while held...
    portal.emit("Activated", &session, "push-to-talk");
    assert_eq!(
        commands.recv_timeout(WAIT).unwrap(),
        LinkCommand::Unmute(ChangeSource::Hotkey)
    );
    // ... and the desktop ending the session while held mutes (its release never comes).
    portal.close_session(&session);
    assert_eq!(
        commands.recv_timeout(WAIT).unwrap(),
        LinkCommand::Mute(ChangeSource::Hotkey)
    );
    let closed = status.recv_timeout(WAIT).expect("the panel is told");
    assert!(closed.contains("ended HardMute's shortcuts"), "{closed}");
    assert!(
        commands.recv_timeout(Duration::from_millis(200)).is_err(),
        "the toggle's release and the close asked for nothing else"
    );
}

#[test]
fn a_new_hotkey_binds_a_new_session_and_closes_the_old_one() {
    let bus = PrivateBus::start();
    let portal = FakePortal::start(&bus, 2, Answer::Grant);
    let (link, commands) = mpsc::channel();
    let mut agent = HotkeyAgent::with_portal(Some(bus.address.clone()), link).unwrap();
    agent
        .apply(HotkeySpec::parse("Ctrl+Alt+M").unwrap(), HotkeyMode::Toggle)
        .unwrap();
    assert!(wait_until(|| agent.is_grabbing()));
    let first = session_with_trigger(&portal, "CTRL+ALT+m").unwrap();
    // Hold push-to-talk in the first session, then change the hotkey (push-to-talk mode).
    portal.emit("Activated", &first, "push-to-talk");
    assert_eq!(
        commands.recv_timeout(WAIT).unwrap(),
        LinkCommand::Unmute(ChangeSource::Hotkey)
    );
    agent
        .apply(
            HotkeySpec::parse("Ctrl+Shift+F9").unwrap(),
            HotkeyMode::PushToTalk,
        )
        .unwrap();
    assert_eq!(
        commands.recv_timeout(WAIT).unwrap(),
        LinkCommand::Mute(ChangeSource::Hotkey),
        "the held push-to-talk of the old session is muted"
    );
    assert!(portal.wait_for_call(|c| c == format!("close {first}")));
    assert!(wait_until(|| session_with_trigger(
        &portal,
        "CTRL+SHIFT+F9"
    )
    .is_some()));
    let second = session_with_trigger(&portal, "CTRL+SHIFT+F9").unwrap();
    assert_ne!(first, second);
    // The preferred trigger went to push-to-talk this time.
    let bound = portal.bound(&second);
    let trigger_of = |id: &str| {
        bound
            .iter()
            .find(|(i, _, _)| i == id)
            .and_then(|(_, _, t)| t.clone())
    };
    assert_eq!(trigger_of("push-to-talk").as_deref(), Some("CTRL+SHIFT+F9"));
    assert_eq!(trigger_of("toggle-mute"), None);
    assert!(wait_until(|| agent.is_grabbing()));
    portal.emit("Activated", &second, "push-to-talk");
    assert_eq!(
        commands.recv_timeout(WAIT).unwrap(),
        LinkCommand::Unmute(ChangeSource::Hotkey)
    );
    // Quitting while held mutes and closes the session.
    agent.release();
    assert_eq!(
        commands.recv_timeout(WAIT).unwrap(),
        LinkCommand::Mute(ChangeSource::Hotkey)
    );
    assert!(portal.wait_for_call(|c| c == format!("close {second}")));
}

#[test]
fn a_refusal_is_reported_and_nothing_is_bound() {
    let bus = PrivateBus::start();
    let _portal = FakePortal::start(&bus, 2, Answer::RefuseBind(1));
    let (link, commands) = mpsc::channel();
    let mut agent = HotkeyAgent::with_portal(Some(bus.address.clone()), link).unwrap();
    let (status_tx, status) = mpsc::channel();
    agent.set_status_sink(std::sync::Arc::new(move |text| {
        let _ = status_tx.send(text);
    }));
    agent
        .apply(HotkeySpec::parse("Ctrl+Alt+M").unwrap(), HotkeyMode::Toggle)
        .unwrap();
    let text = status.recv_timeout(WAIT).unwrap();
    assert!(
        text.contains("not bound") && text.contains("hardmute toggle"),
        "{text}"
    );
    assert!(!agent.is_grabbing());
    assert!(commands.try_recv().is_err());
}

#[test]
fn without_a_portal_the_agent_is_not_built_on_it() {
    let bus = PrivateBus::start();
    let (link, _commands) = mpsc::channel();
    match HotkeyAgent::with_portal(Some(bus.address.clone()), link) {
        Err(e) => assert_eq!(e, hardmute_portal_shortcuts::PortalError::NoPortal),
        Ok(_) => panic!("an agent on a bus without a portal"),
    }
}
