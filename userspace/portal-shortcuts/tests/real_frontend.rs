//! Our client against the REAL xdg-desktop-portal frontend, with a stand-in desktop backend
//! (tests/fake_backend) behind it, all on a private dbus-daemon.
//!
//! This replaces the from-the-spec fake of the frontend (tests/portal.rs) by the real thing:
//! request and session objects, handle tokens, Response signals, session closing and signal
//! forwarding are xdg-desktop-portal's own. Only the desktop (KDE/GNOME backend) is a stand-in.
//!
//! Ignored by default because it needs the xdg-desktop-portal binary, which is not part of the
//! project's base packages. Run it with
//!
//! ```text
//! cargo test -p hardmute-portal-shortcuts --test real_frontend -- --ignored
//! ```
//!
//! after `apt-get install xdg-desktop-portal` (Debian 12: 1.16), or point `HARDMUTE_XDP_BIN` at an
//! unpacked binary. When run, a missing binary is a failure, not a skip.

#![cfg(target_os = "linux")]

mod fake_backend;
mod fake_portal;

use fake_backend::{FakeBackend, BACKEND_DESKTOP};
use fake_portal::{PrivateBus, PORTAL_NAME};
use hardmute_portal_shortcuts::{
    probe_on, PortalConfig, PortalError, PortalShortcuts, PortalStep, Refusal, ShortcutAction,
    ShortcutEvent,
};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

fn xdp_binary() -> PathBuf {
    let path = std::env::var_os("HARDMUTE_XDP_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/libexec/xdg-desktop-portal"));
    assert!(
        path.exists(),
        "{} not found: install xdg-desktop-portal (Debian/Ubuntu: apt-get install \
         xdg-desktop-portal) or set HARDMUTE_XDP_BIN",
        path.display()
    );
    path
}

/// The real frontend on `bus`, reading only our backend's `.portal` file.
struct Frontend {
    child: Child,
    _portals: tempfile::TempDir,
    log: PathBuf,
}

impl Frontend {
    fn start(bus: &PrivateBus) -> Self {
        let portals = tempfile::tempdir().expect("portal dir");
        std::fs::write(
            portals.path().join("hardmutetest.portal"),
            FakeBackend::portal_file(),
        )
        .expect("portal file");
        let log = portals.path().join("xdg-desktop-portal.log");
        let child = Command::new(xdp_binary())
            .arg("--verbose")
            .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
            .env("XDG_DESKTOP_PORTAL_DIR", portals.path())
            .env("XDG_CURRENT_DESKTOP", BACKEND_DESKTOP)
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start xdg-desktop-portal");
        let frontend = Self {
            child,
            _portals: portals,
            log,
        };
        // Ready once it owns the portal name.
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if probe_on(&bus.address).is_ok() {
                return frontend;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "xdg-desktop-portal did not offer GlobalShortcuts on {PORTAL_NAME}; its log:\n{}",
            frontend.log()
        );
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Frontend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(
    bus: &PrivateBus,
) -> (
    Result<PortalShortcuts, PortalError>,
    mpsc::Receiver<ShortcutEvent>,
) {
    let (tx, rx) = mpsc::channel();
    let config = PortalConfig {
        bus_address: Some(bus.address.clone()),
        ..PortalConfig::new("Ctrl+Alt+M")
    };
    let result = PortalShortcuts::start_with(config, move |event| {
        let _ = tx.send(event);
    });
    (result, rx)
}

#[test]
#[ignore = "needs the xdg-desktop-portal binary (apt-get install xdg-desktop-portal)"]
fn through_the_real_frontend_binding_events_listing_and_closing_work() {
    let bus = PrivateBus::start();
    let backend = FakeBackend::start(&bus.address, 0);
    let frontend = Frontend::start(&bus);

    let (shortcuts, events) = start(&bus);
    let shortcuts = shortcuts.unwrap_or_else(|e| {
        panic!(
            "bind through the frontend: {e}\nfrontend log:\n{}",
            frontend.log()
        )
    });
    assert!(shortcuts.version() >= 1);
    let session = backend.only_session();
    let calls = backend.calls();
    assert!(
        calls.iter().any(|c| c.starts_with("impl bind")
            && c.contains("(\"toggle-mute\", Some(\"CTRL+ALT+m\"))")
            && c.contains("(\"push-to-talk\", None)")),
        "backend calls: {calls:?}"
    );
    let bound: Vec<ShortcutAction> = shortcuts.bound().iter().map(|b| b.action).collect();
    assert_eq!(
        bound,
        vec![ShortcutAction::ToggleMute, ShortcutAction::PushToTalk]
    );

    for _ in 0..20 {
        backend.emit("Activated", &session, "push-to-talk");
        backend.emit("Deactivated", &session, "push-to-talk");
    }
    for pair in 0..20 {
        assert_eq!(
            events.recv_timeout(WAIT).ok(),
            Some(ShortcutEvent::Activated(ShortcutAction::PushToTalk)),
            "press {pair}; frontend log:\n{}",
            frontend.log()
        );
        assert_eq!(
            events.recv_timeout(WAIT).ok(),
            Some(ShortcutEvent::Deactivated(ShortcutAction::PushToTalk)),
            "release {pair}"
        );
    }

    let listed = shortcuts
        .list()
        .expect("ListShortcuts through the frontend");
    assert_eq!(listed, shortcuts.bound());

    // The desktop ends the session: the frontend forwards Session::Closed.
    backend.close_session(&session);
    assert_eq!(
        events.recv_timeout(WAIT).ok(),
        Some(ShortcutEvent::Closed),
        "frontend log:\n{}",
        frontend.log()
    );
}

#[test]
#[ignore = "needs the xdg-desktop-portal binary (apt-get install xdg-desktop-portal)"]
fn through_the_real_frontend_dropping_the_handle_closes_the_backend_session() {
    let bus = PrivateBus::start();
    let backend = FakeBackend::start(&bus.address, 0);
    let _frontend = Frontend::start(&bus);
    let (shortcuts, _events) = start(&bus);
    let shortcuts = shortcuts.expect("bound");
    let session = backend.only_session();
    drop(shortcuts);
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if backend.calls().contains(&format!("impl close {session}")) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("backend session not closed: {:?}", backend.calls());
}

#[test]
#[ignore = "needs the xdg-desktop-portal binary (apt-get install xdg-desktop-portal)"]
fn through_the_real_frontend_a_refusal_is_typed() {
    for (code, refusal) in [(1, Refusal::Cancelled), (2, Refusal::Other)] {
        let bus = PrivateBus::start();
        let _backend = FakeBackend::start(&bus.address, code);
        let _frontend = Frontend::start(&bus);
        let (result, _events) = start(&bus);
        assert_eq!(
            result.unwrap_err(),
            PortalError::Refused(PortalStep::BindShortcuts, refusal)
        );
    }
}

#[test]
#[ignore = "needs the xdg-desktop-portal binary (apt-get install xdg-desktop-portal)"]
fn the_real_frontend_without_a_global_shortcuts_backend_is_no_global_shortcuts() {
    // The frontend runs but no backend offers GlobalShortcuts: it does not export the
    // interface, and GDBus answers Properties.Get with InvalidArgs.
    let bus = PrivateBus::start();
    let portals = tempfile::tempdir().unwrap();
    let mut child = Command::new(xdp_binary())
        .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
        .env("XDG_DESKTOP_PORTAL_DIR", portals.path())
        .env("XDG_CURRENT_DESKTOP", BACKEND_DESKTOP)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start xdg-desktop-portal");
    let deadline = Instant::now() + WAIT;
    let mut last = probe_on(&bus.address);
    while last == Err(PortalError::NoPortal) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        last = probe_on(&bus.address);
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(last, Err(PortalError::NoGlobalShortcuts));
}

#[test]
#[ignore = "needs the xdg-desktop-portal binary (apt-get install xdg-desktop-portal)"]
fn through_the_real_frontend_an_app_id_is_optional_where_there_is_no_registry() {
    // xdg-desktop-portal before 1.19 has no host app registry: registering fails, binding
    // must go on.
    let bus = PrivateBus::start();
    let backend = FakeBackend::start(&bus.address, 0);
    let _frontend = Frontend::start(&bus);
    let config = PortalConfig {
        bus_address: Some(bus.address.clone()),
        app_id: Some("org.hardmute.Panel".into()),
        ..PortalConfig::new("Ctrl+Alt+M")
    };
    let shortcuts = PortalShortcuts::start_with(config, |_| {}).expect("bound without registry");
    assert_eq!(shortcuts.bound().len(), 2);
    assert!(backend
        .calls()
        .iter()
        .any(|c| c.starts_with("impl create_session")));
}

#[test]
#[ignore = "needs the xdg-desktop-portal binary (apt-get install xdg-desktop-portal)"]
fn through_the_real_frontend_another_sessions_press_stays_there() {
    // xdg-desktop-portal 1.16 broadcasts Activated/Deactivated to every client; two sessions
    // with the same shortcut ids (another app's "push-to-talk") must not cross.
    let bus = PrivateBus::start();
    let backend = FakeBackend::start(&bus.address, 0);
    let _frontend = Frontend::start(&bus);
    let (first, first_events) = start(&bus);
    let _first = first.expect("first bound");
    let first_session = backend.only_session();
    let (second, second_events) = start(&bus);
    let _second = second.expect("second bound");
    let second_session = {
        let log = backend.log.lock();
        log.sessions
            .keys()
            .find(|s| **s != first_session)
            .expect("a second session")
            .clone()
    };
    backend.emit("Activated", &second_session, "push-to-talk");
    assert_eq!(
        second_events.recv_timeout(WAIT).ok(),
        Some(ShortcutEvent::Activated(ShortcutAction::PushToTalk))
    );
    assert!(
        first_events
            .recv_timeout(Duration::from_millis(300))
            .is_err(),
        "the other session's press reached the first client"
    );
    backend.emit("Activated", &first_session, "toggle-mute");
    assert_eq!(
        first_events.recv_timeout(WAIT).ok(),
        Some(ShortcutEvent::Activated(ShortcutAction::ToggleMute))
    );
}
