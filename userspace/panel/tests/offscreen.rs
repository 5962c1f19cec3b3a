//! Offscreen tests of the real panel component with Slint's software renderer: no display, no
//! GPU. A daemon with the simulated backend runs in-process on a socket in a temporary
//! directory; the panel talks to it through the real link, exactly as the app does.
//!
//! One test function: Slint allows one platform per process and the components live on the
//! thread that created them.

use hardmute_ipc::{ChangeSource, Client, DaemonOption, GuardState};
use hardmute_panel::app::{App, HotkeyAgent};
use hardmute_panel::config::{ConfigFile, PanelConfig};
use hardmute_panel::hotkey::HotkeyMode;
use hardmute_panel::link::{EventSink, Link, LinkEvent};
use hardmute_panel::ui::PanelWindow;
use hardmute_panel::view;
use slint::platform::software_renderer::{MinimalSoftwareWindow, RepaintBufferType};
use slint::platform::{PointerEventButton, WindowAdapter, WindowEvent};
use slint::{ComponentHandle, LogicalPosition, PhysicalSize, Rgb8Pixel};
use std::rc::Rc;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

const WIDTH: u32 = 460;
const HEIGHT: u32 = 640;
const MUTED_BG: [u8; 3] = [0xb7, 0x1c, 0x1c];
const LIVE_BG: [u8; 3] = [0x1b, 0x5e, 0x20];

struct OffscreenPlatform {
    window: Rc<MinimalSoftwareWindow>,
    start: Instant,
}

impl slint::platform::Platform for OffscreenPlatform {
    fn create_window_adapter(&self) -> Result<Rc<dyn WindowAdapter>, slint::PlatformError> {
        Ok(self.window.clone())
    }
    fn duration_since_start(&self) -> Duration {
        self.start.elapsed()
    }
}

struct Frame {
    pixels: Vec<Rgb8Pixel>,
}

impl Frame {
    fn at(&self, x: u32, y: u32) -> [u8; 3] {
        let p = self.pixels[(y * WIDTH + x) as usize];
        [p.r, p.g, p.b]
    }
}

fn render(window: &MinimalSoftwareWindow) -> Frame {
    slint::platform::update_timers_and_animations();
    let mut pixels = vec![Rgb8Pixel::new(0, 0, 0); (WIDTH * HEIGHT) as usize];
    // Full repaint every time (a fresh buffer has no previous frame to reuse).
    window.request_redraw();
    let drawn = window.draw_if_needed(|renderer| {
        renderer.render(&mut pixels, WIDTH as usize);
    });
    assert!(drawn, "the window had something to draw");
    Frame { pixels }
}

/// The state button's rectangle in physical pixels (scale factor 1).
fn button_rect(ui: &PanelWindow) -> (u32, u32, u32, u32) {
    let (cx, cy) = (ui.get_state_button_x(), ui.get_state_button_y());
    let (w, h) = (ui.get_state_button_width(), ui.get_state_button_height());
    assert!(w > 200.0 && h >= 150.0, "state button is big: {w}x{h}");
    (
        (cx - w / 2.0) as u32,
        (cy - h / 2.0) as u32,
        w as u32,
        h as u32,
    )
}

/// Share of the button's pixels having `colour` (its background), and of white ones (its text).
fn button_colours(frame: &Frame, rect: (u32, u32, u32, u32), colour: [u8; 3]) -> (f64, usize) {
    let (x0, y0, w, h) = rect;
    let (mut matching, mut white, mut total) = (0usize, 0usize, 0usize);
    // Stay 14 px inside the rounded corners.
    for y in y0 + 14..y0 + h - 14 {
        for x in x0 + 14..x0 + w - 14 {
            let p = frame.at(x, y);
            total += 1;
            if p.iter().zip(colour).all(|(a, b)| a.abs_diff(b) <= 3) {
                matching += 1;
            }
            if p.iter().all(|c| *c >= 0xf0) {
                white += 1;
            }
        }
    }
    (matching as f64 / total as f64, white)
}

fn pump_until(
    app: &Rc<App>,
    events: &mpsc::Receiver<LinkEvent>,
    what: &str,
    done: impl Fn(&App) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(app) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        if let Ok(event) = events.recv_timeout(Duration::from_millis(50)) {
            app.handle(event);
        }
        app.pump(events);
    }
}

fn click(window: &MinimalSoftwareWindow, x: f32, y: f32) {
    let position = LogicalPosition::new(x, y);
    window.dispatch_event(WindowEvent::PointerMoved { position });
    window.dispatch_event(WindowEvent::PointerPressed {
        position,
        button: PointerEventButton::Left,
    });
    window.dispatch_event(WindowEvent::PointerReleased {
        position,
        button: PointerEventButton::Left,
    });
}

#[test]
fn panel_renders_both_states_and_its_button_drives_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("hardmute.sock");
    let daemon = hardmuted::run(
        "simulated",
        hardmuted::StateStore::in_dir(dir.path()),
        &socket,
    )
    .expect("daemon starts");

    let window = MinimalSoftwareWindow::new(RepaintBufferType::NewBuffer);
    slint::platform::set_platform(Box::new(OffscreenPlatform {
        window: window.clone(),
        start: Instant::now(),
    }))
    .unwrap();
    let ui = PanelWindow::new().unwrap();
    window.set_size(PhysicalSize::new(WIDTH, HEIGHT));
    ui.show().unwrap();

    // Before the daemon answers: the neutral "no daemon" look, neither red nor green.
    let frame = render(&window);
    let rect = button_rect(&ui);
    assert!(button_colours(&frame, rect, MUTED_BG).0 < 0.01);

    let (events_tx, events) = mpsc::channel();
    let sink: EventSink = Arc::new(move |event| {
        let _ = events_tx.send(event);
    });
    let link = Link::start(socket.clone(), sink);
    // An older panel left its hotkey in panel.toml: handed to the daemon once.
    let panel_dir = tempfile::tempdir().unwrap();
    let legacy = ConfigFile::in_dir(panel_dir.path());
    legacy
        .save(&PanelConfig {
            hotkey: "Ctrl+Alt+K".into(),
            mode: HotkeyMode::PushToTalk,
        })
        .unwrap();
    let hotkey = HotkeyAgent::new(false, link.sender());
    let app = App::new(ui.clone_strong(), None, link, hotkey, None, Some(legacy));
    pump_until(&app, &events, "the first state", |app| {
        app.window.get_connected()
    });
    assert!(ui.get_muted(), "a fresh install starts muted");
    // The daemon announces its level feed just after the first state; muted, the meter stays
    // hidden and the line says why.
    pump_until(&app, &events, "the level feed's announcement", |app| {
        app.window.get_level_note().contains("while muted")
    });
    assert!(!ui.get_meter_shown(), "no meter while muted");
    pump_until(&app, &events, "the migrated hotkey", |app| {
        app.window.get_hotkey_label() == "Ctrl+Alt+K" && app.window.get_hotkey_mode() == 1
    });
    let mut observer = Client::connect(&socket).unwrap();
    let state = observer.status().unwrap();
    assert_eq!(state.hotkey.as_deref(), Some("Ctrl+Alt+K"));
    assert_eq!(state.hotkey_mode, hardmute_ipc::HotkeyMode::PushToTalk);
    assert!(
        !panel_dir.path().join("panel.toml").exists()
            && panel_dir.path().join("panel.toml.migrated").exists(),
        "migrated once"
    );
    // A hotkey typed into the panel is stored by the daemon, and the panel follows it.
    ui.invoke_hotkey_apply("ctrl+shift+f9".into(), 0);
    pump_until(&app, &events, "the typed hotkey", |app| {
        app.window.get_hotkey_label() == "Ctrl+Shift+F9" && app.window.get_hotkey_mode() == 0
    });
    let state = observer.status().unwrap();
    assert_eq!(state.hotkey.as_deref(), Some("Ctrl+Shift+F9"));
    assert_eq!(state.hotkey_mode, hardmute_ipc::HotkeyMode::Toggle);
    let before = ui.get_hotkey_status();
    ui.invoke_hotkey_apply("Ctrl+".into(), 0);
    assert_ne!(
        ui.get_hotkey_status(),
        before,
        "a malformed hotkey is refused in the panel, with a reason"
    );

    // MUTED: the button is the muted red with white text on it.
    let muted_frame = render(&window);
    let rect = button_rect(&ui);
    let (red, muted_text) = button_colours(&muted_frame, rect, MUTED_BG);
    let (green, _) = button_colours(&muted_frame, rect, LIVE_BG);
    assert!(red > 0.6, "muted button is red ({red:.2} of its pixels)");
    assert!(green < 0.01, "and not green ({green:.2})");
    assert!(
        muted_text > 200,
        "the MUTED label is drawn ({muted_text} white pixels)"
    );

    // A click on the button unmutes — in the daemon, not just on screen.
    click(&window, ui.get_state_button_x(), ui.get_state_button_y());
    let deadline = Instant::now() + Duration::from_secs(10);
    let state = loop {
        let state = observer.status().unwrap();
        if !state.muted || Instant::now() > deadline {
            break state;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!state.muted, "the daemon is live after the click");
    assert_eq!(
        state.source,
        ChangeSource::Panel,
        "and knows the panel did it"
    );

    // The panel shows what the daemon streams back.
    pump_until(&app, &events, "the live state", |app| {
        !app.window.get_muted()
    });
    let live_frame = render(&window);
    let rect = button_rect(&ui);
    let (green, live_text) = button_colours(&live_frame, rect, LIVE_BG);
    let (red, _) = button_colours(&live_frame, rect, MUTED_BG);
    assert!(green > 0.6, "live button is green ({green:.2})");
    assert!(red < 0.01, "and not red ({red:.2})");
    assert!(
        live_text > 200 && live_text != muted_text,
        "the LIVE label is drawn"
    );
    // Live: the meter shows the daemon's level feed (the simulated sine peaks at ~0.51,
    // -5.8 dBFS, ~0.9 of the bar).
    pump_until(&app, &events, "the daemon's level on the meter", |app| {
        app.window.get_meter_shown() && app.window.get_level() > 0.8
    });

    // A change made elsewhere (the CLI) shows up without any click.
    observer.mute(ChangeSource::Cli).unwrap();
    pump_until(&app, &events, "the CLI's mute", |app| {
        app.window.get_muted()
    });
    let (red, _) = button_colours(&render(&window), button_rect(&ui), MUTED_BG);
    assert!(red > 0.6, "muted again by the CLI ({red:.2})");
    assert!(
        !ui.get_meter_shown() && ui.get_level() == 0.0,
        "muted: the meter is hidden and emptied"
    );

    // Keyboard: the clicks above focused the state button; Tab leaves it, Shift+Tab (Backtab)
    // comes back, Space presses it.
    let backtab = String::from(char::from(slint::platform::Key::Backtab));
    for text in ["\t", backtab.as_str(), " "] {
        window.dispatch_event(WindowEvent::KeyPressed { text: text.into() });
        window.dispatch_event(WindowEvent::KeyReleased { text: text.into() });
    }
    pump_until(&app, &events, "the keyboard unmute", |app| {
        !app.window.get_muted()
    });
    assert_eq!(observer.status().unwrap().source, ChangeSource::Panel);
    window.dispatch_event(WindowEvent::KeyPressed { text: " ".into() });
    window.dispatch_event(WindowEvent::KeyReleased { text: " ".into() });
    pump_until(&app, &events, "the keyboard mute", |app| {
        app.window.get_muted()
    });

    // The daemon stops: the panel says so instead of showing a stale state.
    daemon.shutdown();
    pump_until(&app, &events, "the disconnect", |app| {
        !app.window.get_connected()
    });
    let frame = render(&window);
    let (red, _) = button_colours(&frame, button_rect(&ui), MUTED_BG);
    let (green, _) = button_colours(&frame, button_rect(&ui), LIVE_BG);
    assert!(
        red < 0.01 && green < 0.01,
        "no daemon: neither red nor green"
    );

    // The daemon comes back (same socket, persisted state): the panel reconnects by itself.
    let daemon = hardmuted::run(
        "simulated",
        hardmuted::StateStore::in_dir(dir.path()),
        &socket,
    )
    .expect("daemon restarts");
    pump_until(&app, &events, "the reconnect", |app| {
        app.window.get_connected()
    });
    assert!(ui.get_muted(), "the persisted state (muted) is shown");
    let (red, _) = button_colours(&render(&window), button_rect(&ui), MUTED_BG);
    assert!(red > 0.6, "red again after the reconnect ({red:.2})");

    // The physical-mic guard (macOS/Windows: held by hardmuted; modelled by the simulated
    // backend, off by default). Its toggle in the Protection tab, clicked like a user would.
    let daemon = guard_section(&app, &events, &window, &ui, &socket, dir.path(), daemon);

    // Another user owns the device (the simulated backend plays the driver's refusal): the
    // daemon stays up muted and says why; the panel draws the banner, says who can unmute, and
    // a click on MUTED sends no unmute.
    daemon.shutdown();
    pump_until(&app, &events, "the disconnect", |app| {
        !app.window.get_connected()
    });
    let band = |frame: &Frame| {
        // The owner banner's grey-blue, anywhere between the button and the tabs.
        let (_, y0, _, h) = button_rect(&ui);
        (y0 + h..y0 + h + 120)
            .flat_map(|y| (0..WIDTH).map(move |x| (x, y)))
            .filter(|&(x, y)| frame.at(x, y) == [0xec, 0xef, 0xf1])
            .count()
    };
    assert_eq!(band(&render(&window)), 0, "no owner banner for the owner");
    std::env::set_var(
        hardmuted::backend::simulated::NOT_OWNER_ENV,
        "uid 1001 owns the HardMute Microphone",
    );
    let daemon = hardmuted::run(
        "simulated",
        hardmuted::StateStore::in_dir(dir.path()),
        &socket,
    )
    .expect("a second user's daemon stays up");
    std::env::remove_var(hardmuted::backend::simulated::NOT_OWNER_ENV);
    pump_until(&app, &events, "the not-owner state", |app| {
        app.window.get_connected() && !app.window.get_owner_note().is_empty()
    });
    assert!(ui.get_muted() && !ui.get_can_unmute());
    assert!(
        ui.get_owner_note().contains("only that user can unmute it"),
        "{}",
        ui.get_owner_note()
    );
    let frame = render(&window);
    assert!(band(&frame) > 2000, "the owner banner is drawn");
    let (red, _) = button_colours(&frame, button_rect(&ui), MUTED_BG);
    assert!(red > 0.6, "still the muted red ({red:.2})");
    let mut observer = Client::connect(&socket).unwrap();
    let (cx, cy) = (ui.get_state_button_x(), ui.get_state_button_y());
    click(&window, cx, cy);
    let deadline = Instant::now() + Duration::from_millis(500);
    while Instant::now() < deadline {
        if let Ok(event) = events.recv_timeout(Duration::from_millis(50)) {
            app.handle(event);
        }
    }
    assert!(observer.status().unwrap().muted, "still muted");
    // A refused unmute would come back as the driver's error; the panel did not send one and
    // says why instead.
    assert!(
        ui.get_status_line().contains("only that user can unmute"),
        "the click is answered with why: {}",
        ui.get_status_line()
    );
    daemon.shutdown();
}

/// The guard's toggle, found as a screen reader finds it: its centre in window coordinates.
fn guard_toggle_centre(ui: &PanelWindow) -> Option<(f32, f32)> {
    use i_slint_backend_testing::{AccessibleRole, ElementQuery};
    ElementQuery::from_root(ui)
        .find_all()
        .into_iter()
        .find(|e| {
            e.accessible_role() == Some(AccessibleRole::Checkbox)
                && e.accessible_label()
                    .is_some_and(|l| l.starts_with("Block other apps from the physical"))
        })
        .map(|e| {
            let (at, size) = (e.absolute_position(), e.size());
            (at.x + size.width / 2.0, at.y + size.height / 2.0)
        })
}

fn wait_for_status(
    observer: &mut Client,
    what: &str,
    done: impl Fn(&hardmute_ipc::State) -> bool,
) -> hardmute_ipc::State {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let state = observer.status().unwrap();
        if done(&state) {
            return state;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {state:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A backend as the simulated one, except for the guard: `refuse` = it has one and refuses to
/// switch it (as a driver that says another user owns the device); otherwise it has none (as
/// the Linux backend, whose guard is configuration written by the CLI).
struct GuardVariant {
    inner: Box<dyn hardmuted::backend::Backend>,
    refuse: bool,
}

const REFUSAL: &str = "the physical mic belongs to uid 1001 (test backend)";

impl hardmuted::backend::Backend for GuardVariant {
    fn name(&self) -> &'static str {
        if self.refuse {
            "refusing"
        } else {
            "guardless"
        }
    }
    fn start(&mut self, initial_muted: bool) -> Result<(), hardmuted::backend::BackendError> {
        self.inner.start(initial_muted)
    }
    fn set_hard_mute(
        &mut self,
        muted: bool,
        source: ChangeSource,
    ) -> Result<(), hardmuted::backend::BackendError> {
        self.inner.set_hard_mute(muted, source)
    }
    fn hard_mute(&self) -> bool {
        self.inner.hard_mute()
    }
    fn status(&self) -> hardmuted::backend::BackendStatus {
        self.inner.status()
    }
    fn physical_inputs(
        &self,
    ) -> Result<Vec<hardmute_ipc::InputDevice>, hardmuted::backend::BackendError> {
        self.inner.physical_inputs()
    }
    fn select_input(&mut self, name: Option<&str>) -> Result<(), hardmuted::backend::BackendError> {
        self.inner.select_input(name)
    }
    fn listeners(&self) -> Result<Vec<hardmute_ipc::Listener>, hardmuted::backend::BackendError> {
        self.inner.listeners()
    }
    fn set_release_on_mute(
        &mut self,
        release: bool,
    ) -> Result<(), hardmuted::backend::BackendError> {
        self.inner.set_release_on_mute(release)
    }
    fn set_guard(&mut self, on: bool) -> Result<(), hardmuted::backend::BackendError> {
        if self.refuse {
            Err(hardmuted::backend::BackendError::NotOwner(REFUSAL.into()))
        } else {
            Err(hardmuted::backend::BackendError::Unsupported(format!(
                "no guard here (asked {on})"
            )))
        }
    }
    fn guard(&self) -> Option<GuardState> {
        self.refuse.then(|| self.inner.guard()).flatten()
    }
    fn stop(&mut self) {
        self.inner.stop()
    }
}

fn start_variant(
    dir: &std::path::Path,
    socket: &std::path::Path,
    refuse: bool,
) -> hardmuted::RunningServer {
    let daemon = hardmuted::Daemon::start(hardmuted::StateStore::in_dir(dir), |options| {
        Ok(Box::new(GuardVariant {
            inner: hardmuted::backend::create("simulated", options)?,
            refuse,
        }))
    })
    .expect("the variant daemon starts");
    hardmuted::RunningServer::start(daemon, socket).expect("and serves the socket")
}

/// The guard's toggle against the simulated daemon (on, off from the CLI, on but not holding
/// with the daemon's reason), a daemon that refuses it, and one that has none (Linux). Returns
/// the daemon left running (the guardless one, the guard's setting off).
fn guard_section(
    app: &Rc<App>,
    events: &mpsc::Receiver<LinkEvent>,
    window: &MinimalSoftwareWindow,
    ui: &PanelWindow,
    socket: &std::path::Path,
    dir: &std::path::Path,
    daemon: hardmuted::RunningServer,
) -> hardmuted::RunningServer {
    let mut observer = Client::connect(socket).unwrap();
    assert_eq!(
        observer.status().unwrap().guard.map(|g| g.on),
        Some(false),
        "the simulated backend has a guard, off by default"
    );
    pump_until(app, events, "the guard's toggle", |app| {
        app.window.get_guard_shown()
    });
    assert!(!ui.get_guard_on());
    assert!(
        ui.get_guard_line().starts_with("Off:"),
        "{}",
        ui.get_guard_line()
    );

    // A click on the toggle in the Protection tab turns the daemon's guard on, and it holds.
    ui.set_current_tab(2);
    render(window);
    let (x, y) = guard_toggle_centre(ui).expect("the toggle is in the Protection tab");
    click(window, x, y);
    // The simulated guard holds once its mic is open (its audio thread opens it).
    wait_for_status(&mut observer, "the guard on and holding", |s| {
        s.guard.as_ref().is_some_and(|g| g.on && g.holds)
    });
    pump_until(app, events, "the guard shown holding", |app| {
        app.window.get_guard_on()
            && app
                .window
                .get_guard_line()
                .starts_with("On: hardmuted holds")
    });
    assert!(!ui.get_guard_warning());
    assert_eq!(ui.get_guard_error(), "");

    // Off from the CLI: the panel follows without a click.
    observer.set_option(DaemonOption::Guard(false)).unwrap();
    pump_until(app, events, "the guard off", |app| {
        !app.window.get_guard_on() && app.window.get_guard_line().starts_with("Off:")
    });

    // On, but another process holds the mic: not holding, the daemon's reason shown verbatim.
    observer.set_option(DaemonOption::Guard(true)).unwrap();
    drop(observer);
    daemon.shutdown();
    pump_until(app, events, "the disconnect", |app| {
        !app.window.get_connected()
    });
    assert!(
        !ui.get_guard_shown() && ui.get_guard_line().is_empty(),
        "no daemon, no guard"
    );
    std::env::set_var(hardmuted::backend::simulated::GUARD_TAKEN_ENV, "pid 77");
    let daemon = hardmuted::run("simulated", hardmuted::StateStore::in_dir(dir), socket)
        .expect("daemon restarts");
    std::env::remove_var(hardmuted::backend::simulated::GUARD_TAKEN_ENV);
    let mut observer = Client::connect(socket).unwrap();
    let why = observer.status().unwrap().guard.and_then(|g| g.why_not);
    let why = why.expect("the guard is on and does not hold");
    assert!(why.contains("pid 77"), "{why}");
    pump_until(app, events, "the guard shown not holding", |app| {
        app.window.get_guard_warning()
    });
    assert!(ui.get_guard_on());
    assert_eq!(
        ui.get_guard_line(),
        format!("⚠ On, but NOT holding the physical mic: {why}")
    );
    observer.set_option(DaemonOption::Guard(false)).unwrap();
    drop(observer);
    daemon.shutdown();
    pump_until(app, events, "the disconnect", |app| {
        !app.window.get_connected()
    });

    // A daemon that refuses the request: the refusal is shown beside the toggle, the toggle
    // goes back to off, and the daemon's guard is unchanged.
    let daemon = start_variant(dir, socket, true);
    pump_until(app, events, "the refusing daemon's state", |app| {
        app.window.get_connected() && app.window.get_guard_shown()
    });
    assert!(!ui.get_guard_on());
    render(window);
    let (x, y) = guard_toggle_centre(ui).expect("the toggle");
    click(window, x, y);
    pump_until(app, events, "the refusal", |app| {
        !app.window.get_guard_error().is_empty()
    });
    let error = ui.get_guard_error();
    assert!(
        error.starts_with("⚠ The guard was not changed: ") && error.contains(REFUSAL),
        "{error}"
    );
    assert!(
        !ui.get_guard_on(),
        "the toggle shows the daemon's setting again"
    );
    let mut observer = Client::connect(socket).unwrap();
    assert_eq!(observer.status().unwrap().guard.map(|g| g.on), Some(false));
    drop(observer);
    daemon.shutdown();
    pump_until(app, events, "the disconnect", |app| {
        !app.window.get_connected()
    });

    // A daemon without a daemon-held guard (the Linux backend): no toggle, the CLI's way said.
    let daemon = start_variant(dir, socket, false);
    pump_until(app, events, "the guardless daemon's state", |app| {
        app.window.get_connected()
            && !app.window.get_guard_shown()
            && !app.window.get_guard_line().is_empty()
    });
    assert_eq!(
        ui.get_guard_error(),
        "",
        "a new daemon: the old refusal is gone"
    );
    assert_eq!(ui.get_guard_line(), view::GUARD_LINUX_NOTE);
    render(window);
    assert_eq!(guard_toggle_centre(ui), None, "no toggle drawn");
    ui.set_current_tab(0);
    daemon
}
