//! The portal client against a stand-in portal (tests/fake_portal) on a private dbus-daemon.
//!
//! What this proves: ashpd and our wrapper speak the GlobalShortcuts protocol as the portal
//! documentation describes it (handles, Request::Response, Session::Closed, the signals), and
//! every outcome reaches the caller typed. What it does not prove: that a real
//! xdg-desktop-portal with a GNOME or KDE backend answers the same way.

#![cfg(target_os = "linux")]

mod fake_portal;

use fake_portal::{Answer, FakePortal, PrivateBus};
use hardmute_portal_shortcuts::{
    probe_on, BoundShortcut, PortalConfig, PortalError, PortalShortcuts, PortalStep, Refusal,
    ShortcutAction, ShortcutEvent,
};
use std::sync::mpsc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

fn config(bus: &PrivateBus, trigger: &str) -> PortalConfig {
    PortalConfig {
        bus_address: Some(bus.address.clone()),
        ..PortalConfig::new(trigger)
    }
}

fn start(
    config: PortalConfig,
) -> (
    Result<PortalShortcuts, PortalError>,
    mpsc::Receiver<ShortcutEvent>,
) {
    let (tx, rx) = mpsc::channel();
    let shortcuts = PortalShortcuts::start_with(config, move |event| {
        let _ = tx.send(event);
    });
    (shortcuts, rx)
}

fn next(events: &mpsc::Receiver<ShortcutEvent>) -> ShortcutEvent {
    events
        .recv_timeout(WAIT)
        .expect("an event from the portal thread")
}

#[test]
fn binds_both_shortcuts_and_delivers_presses_and_releases() {
    let bus = PrivateBus::start();
    let portal = FakePortal::start(&bus, 2, Answer::Grant);
    let (shortcuts, events) = start(config(&bus, "Ctrl+Alt+M"));
    let shortcuts = shortcuts.expect("bound");
    assert_eq!(shortcuts.version(), 2);

    // What the portal was asked for: both ids, our description, the converted trigger on
    // toggle-mute only.
    let (session, _owner) = portal.only_session();
    let asked = portal.bound(&session);
    let by_id = |id: &str| asked.iter().find(|(i, _, _)| i == id).cloned();
    let toggle = by_id("toggle-mute").expect("toggle-mute asked");
    let ptt = by_id("push-to-talk").expect("push-to-talk asked");
    assert_eq!(toggle.2.as_deref(), Some("CTRL+ALT+m"));
    assert_eq!(ptt.2, None, "two shortcuts cannot prefer the same keys");
    assert!(toggle.1.contains("HardMute") && ptt.1.contains("push to talk"));

    // What the caller is told was bound (the fake describes a trigger by the preferred one).
    assert_eq!(
        shortcuts.bound(),
        &[
            BoundShortcut {
                action: ShortcutAction::ToggleMute,
                trigger_description: "CTRL+ALT+m".into()
            },
            BoundShortcut {
                action: ShortcutAction::PushToTalk,
                trigger_description: String::new()
            },
        ]
    );

    portal.emit("Activated", &session, "push-to-talk");
    portal.emit("Deactivated", &session, "push-to-talk");
    portal.emit("Activated", &session, "some-other-id");
    portal.emit("Activated", &session, "toggle-mute");
    assert_eq!(
        next(&events),
        ShortcutEvent::Activated(ShortcutAction::PushToTalk)
    );
    assert_eq!(
        next(&events),
        ShortcutEvent::Deactivated(ShortcutAction::PushToTalk)
    );
    assert_eq!(
        next(&events),
        ShortcutEvent::Activated(ShortcutAction::ToggleMute),
        "an id we never bound is skipped, not mistaken for one of ours"
    );

    portal.emit_changed(
        &session,
        &[("push-to-talk".into(), "ptt".into(), Some("F13".into()))],
    );
    assert_eq!(
        next(&events),
        ShortcutEvent::Changed(vec![BoundShortcut {
            action: ShortcutAction::PushToTalk,
            trigger_description: "F13".into()
        }])
    );

    // ListShortcuts round trip through the portal thread.
    let listed = shortcuts.list().expect("ListShortcuts");
    assert_eq!(listed, shortcuts.bound());
    assert!(portal
        .calls()
        .iter()
        .any(|c| c == &format!("list {session}")));

    // Dropping the handle closes the session at the portal.
    drop(shortcuts);
    assert!(
        portal.wait_for_call(|c| c == format!("close {session}")),
        "Session.Close was not called: {:?}",
        portal.calls()
    );
    assert!(
        events.recv_timeout(Duration::from_millis(200)).is_err(),
        "no event after our own stop"
    );
}

#[test]
fn presses_and_releases_keep_their_order() {
    // A release handed over before its press would leave push-to-talk live.
    let bus = PrivateBus::start();
    let portal = FakePortal::start(&bus, 2, Answer::Grant);
    let (shortcuts, events) = start(config(&bus, "Ctrl+Alt+M"));
    let _shortcuts = shortcuts.expect("bound");
    let (session, _) = portal.only_session();
    const PAIRS: usize = 100;
    for _ in 0..PAIRS {
        portal.emit("Activated", &session, "push-to-talk");
        portal.emit("Deactivated", &session, "push-to-talk");
    }
    for pair in 0..PAIRS {
        assert_eq!(
            next(&events),
            ShortcutEvent::Activated(ShortcutAction::PushToTalk),
            "press {pair}"
        );
        assert_eq!(
            next(&events),
            ShortcutEvent::Deactivated(ShortcutAction::PushToTalk),
            "release {pair}"
        );
    }
}

#[test]
fn another_apps_session_does_not_press_our_shortcut() {
    // xdg-desktop-portal 1.16 broadcasts Activated/Deactivated; another app may well have a
    // shortcut called "push-to-talk".
    let bus = PrivateBus::start();
    let portal = FakePortal::start(&bus, 1, Answer::Grant);
    let (shortcuts, events) = start(config(&bus, "Ctrl+Alt+M"));
    let _shortcuts = shortcuts.expect("bound");
    let (session, _) = portal.only_session();
    portal.broadcast_for_other_session("Activated", "push-to-talk");
    portal.broadcast_for_other_session("Deactivated", "push-to-talk");
    portal.emit("Activated", &session, "toggle-mute");
    assert_eq!(
        next(&events),
        ShortcutEvent::Activated(ShortcutAction::ToggleMute),
        "the other session's signals were skipped, ours came through"
    );
    assert!(events.recv_timeout(Duration::from_millis(200)).is_err());
}

#[test]
fn look_alike_signals_from_another_bus_client_are_ignored() {
    let bus = PrivateBus::start();
    let portal = FakePortal::start(&bus, 2, Answer::Grant);
    let (shortcuts, events) = start(config(&bus, "Ctrl+Alt+M"));
    let _shortcuts = shortcuts.expect("bound");
    let (session, owner) = portal.only_session();
    let intruder = fake_portal::Intruder::connect(&bus);
    intruder.emit_activated(&owner, &session, "push-to-talk");
    assert!(
        events.recv_timeout(Duration::from_millis(300)).is_err(),
        "a signal not from the portal must not press the shortcut"
    );
    portal.emit("Activated", &session, "toggle-mute");
    assert_eq!(
        next(&events),
        ShortcutEvent::Activated(ShortcutAction::ToggleMute)
    );
}

#[test]
fn the_desktop_closing_the_session_is_reported_once() {
    let bus = PrivateBus::start();
    let portal = FakePortal::start(&bus, 1, Answer::Grant);
    let (shortcuts, events) = start(config(&bus, "Super+F9"));
    let shortcuts = shortcuts.expect("bound");
    assert_eq!(shortcuts.version(), 1);
    let (session, _) = portal.only_session();
    assert_eq!(
        portal.bound(&session)[0].2.as_deref(),
        Some("LOGO+F9"),
        "trigger converted"
    );
    portal.close_session(&session);
    assert_eq!(next(&events), ShortcutEvent::Closed);
    portal.emit("Activated", &session, "toggle-mute");
    assert!(
        events.recv_timeout(Duration::from_millis(200)).is_err(),
        "nothing after Closed"
    );
    assert_eq!(shortcuts.list(), Err(PortalError::SessionClosed));
}

#[test]
fn refusals_are_typed_by_response_code_and_step() {
    let cases = [
        (
            Answer::RefuseBind(1),
            PortalError::Refused(PortalStep::BindShortcuts, Refusal::Cancelled),
        ),
        (
            Answer::RefuseBind(2),
            PortalError::Refused(PortalStep::BindShortcuts, Refusal::Other),
        ),
        (
            Answer::RefuseSession(2),
            PortalError::Refused(PortalStep::CreateSession, Refusal::Other),
        ),
        (Answer::CloseInsteadOfBinding, PortalError::SessionClosed),
    ];
    for (answer, expected) in cases {
        let bus = PrivateBus::start();
        let portal = FakePortal::start(&bus, 2, answer);
        let (result, _events) = start(config(&bus, "Ctrl+Alt+M"));
        assert_eq!(result.unwrap_err(), expected, "answer {answer:?}");
        assert!(
            portal
                .calls()
                .iter()
                .any(|c| c.starts_with("create_session")),
            "the portal was really asked ({answer:?})"
        );
    }
}

#[test]
fn a_missing_portal_and_a_portal_without_global_shortcuts_are_told_apart() {
    let bus = PrivateBus::start();
    // Nobody owns org.freedesktop.portal.Desktop, and the private bus can activate nothing.
    assert_eq!(probe_on(&bus.address), Err(PortalError::NoPortal));
    let (result, _events) = start(config(&bus, "Ctrl+Alt+M"));
    assert_eq!(result.unwrap_err(), PortalError::NoPortal);

    let _portal = FakePortal::start_without_global_shortcuts(&bus);
    assert_eq!(probe_on(&bus.address), Err(PortalError::NoGlobalShortcuts));
    let (result, _events) = start(config(&bus, "Ctrl+Alt+M"));
    assert_eq!(result.unwrap_err(), PortalError::NoGlobalShortcuts);
}

#[test]
fn probe_reports_the_interface_version() {
    let bus = PrivateBus::start();
    let _portal = FakePortal::start(&bus, 2, Answer::Grant);
    assert_eq!(probe_on(&bus.address).map(|info| info.version), Ok(2));
}

#[test]
fn an_app_id_is_registered_before_the_session_is_created() {
    let bus = PrivateBus::start();
    let portal = FakePortal::start(&bus, 2, Answer::Grant);
    let (shortcuts, _events) = start(PortalConfig {
        app_id: Some("org.hardmute.Panel".into()),
        ..config(&bus, "Ctrl+Alt+M")
    });
    let _shortcuts = shortcuts.expect("bound");
    let calls = portal.calls();
    let register = calls
        .iter()
        .position(|c| c == "register org.hardmute.Panel");
    let create = calls.iter().position(|c| c.starts_with("create_session"));
    assert!(
        matches!((register, create), (Some(r), Some(c)) if r < c),
        "calls: {calls:?}"
    );
}

#[test]
fn an_unusable_trigger_fails_before_any_portal_call() {
    let bus = PrivateBus::start();
    let portal = FakePortal::start(&bus, 2, Answer::Grant);
    let (result, _events) = start(config(&bus, "Ctrl+Alt+Banana"));
    assert!(matches!(result, Err(PortalError::Trigger(_))));
    assert!(portal.calls().is_empty(), "calls: {:?}", portal.calls());
}

#[test]
fn no_session_bus_at_the_given_address_is_typed() {
    let dir = tempfile::tempdir().unwrap();
    let address = format!("unix:path={}", dir.path().join("nobody").display());
    assert!(matches!(
        probe_on(&address),
        Err(PortalError::NoSessionBus(_))
    ));
}
