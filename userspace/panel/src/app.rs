//! Wires the Slint window and tray to the daemon link and the hotkey. Runs on the UI thread;
//! link events reach it through [`App::handle`] (posted by the app's event sink, or pumped by
//! tests with [`App::pump`]).
//!
//! The hotkey and its mode are the daemon's (`State::hotkey`, `State::hotkey_mode`): the panel
//! grabs what the daemon's state says, and a hotkey typed here is sent to the daemon, grabbed
//! once the daemon's state comes back with it. A `panel.toml` left by an older panel is handed
//! to the daemon once and renamed.

use crate::check;
use crate::config::ConfigFile;
use crate::hotkey::platform::{self, Availability, HotkeyGrab};
use crate::hotkey::portal::{self, PortalHotkey, StatusSink};
use crate::hotkey::{
    mode_from_index, mode_index, HotkeyLogic, HotkeyMode, HotkeyRequest, HotkeySpec,
};
use crate::level::{meter_position, LevelFeed, METER_INTERVAL_MS};
use crate::link::{Link, LinkCommand, LinkEvent};
use crate::ui::{CheckRow, HardMuteTray, ListenerRow, PanelWindow};
use crate::view;
use hardmute_ipc::{ChangeSource, DaemonOption, InputDevice, State};
use parking_lot::Mutex;
use slint::{ComponentHandle, Model, ModelRc, SharedString, VecModel};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

/// The global hotkey as the app runs it: the grab (absent when the session has none) and the
/// key-edge logic shared with the platform's event thread. What to grab comes from the daemon.
pub struct HotkeyAgent {
    grab: Option<HotkeyGrab>,
    /// On Wayland: the desktop's GlobalShortcuts portal instead of a grab.
    portal: Option<PortalHotkey>,
    availability: Availability,
    logic: Arc<Mutex<HotkeyLogic>>,
    current_id: Arc<AtomicU32>,
    link: Sender<LinkCommand>,
}

impl HotkeyAgent {
    /// Sets up the grab if this session can have one and routes its key edges to `link`.
    /// `grab = false` (tests, `--no-hotkey`) grabs nothing.
    pub fn new(grab: bool, link: Sender<LinkCommand>) -> Self {
        // On Wayland the portal is the only global shortcut; an X11 grab there would see keys
        // only while an XWayland window has focus, and both at once could toggle twice.
        let mut portal_missing = None;
        if grab && portal::wanted() {
            match Self::with_portal(None, link.clone()) {
                Ok(agent) => return agent,
                Err(e) => portal_missing = Some(e),
            }
        }
        let mut agent = Self::with_grab(grab, link);
        if let Some(e) = portal_missing {
            log::info!("no GlobalShortcuts portal: {e}");
            let why = format!("The desktop offers no global-shortcuts portal ({e}).");
            agent.availability = match agent.availability {
                Availability::Limited(text) => Availability::Limited(format!("{why} {text}")),
                Availability::Unavailable(text) => {
                    Availability::Unavailable(format!("{why} {text}"))
                }
                Availability::Ready => Availability::Ready,
            };
        }
        agent
    }

    /// The hotkey through the GlobalShortcuts portal on the session bus (or `bus_address`);
    /// fails when no portal with GlobalShortcuts answers there.
    pub fn with_portal(
        bus_address: Option<String>,
        link: Sender<LinkCommand>,
    ) -> Result<Self, hardmute_portal_shortcuts::PortalError> {
        let logic = Arc::new(Mutex::new(HotkeyLogic::new(HotkeyMode::Toggle)));
        let sender = link.clone();
        let portal = PortalHotkey::probe(
            bus_address,
            Arc::new(move |request| {
                let _ = sender.send(command_for(request));
            }),
        )?;
        log::info!(
            "global shortcuts through the desktop's portal (GlobalShortcuts version {})",
            portal.version()
        );
        Ok(Self {
            grab: None,
            portal: Some(portal),
            availability: Availability::Ready,
            logic,
            current_id: Arc::new(AtomicU32::new(0)),
            link,
        })
    }

    /// Where the portal reports what the desktop decided (bound, refused, closed) after
    /// [`HotkeyAgent::apply`] returned; unused with a grab.
    pub fn set_status_sink(&self, sink: StatusSink) {
        if let Some(portal) = &self.portal {
            portal.set_status_sink(sink);
        }
    }

    /// Whether the hotkey goes through the desktop's portal (Wayland).
    pub fn uses_portal(&self) -> bool {
        self.portal.is_some()
    }

    fn with_grab(grab: bool, link: Sender<LinkCommand>) -> Self {
        let mode = HotkeyMode::Toggle;
        let availability = if grab {
            platform::availability()
        } else {
            Availability::Unavailable("global hotkey disabled (--no-hotkey)".into())
        };
        let logic = Arc::new(Mutex::new(HotkeyLogic::new(mode)));
        let current_id = Arc::new(AtomicU32::new(0));
        let grab = if availability.can_grab() {
            match HotkeyGrab::new() {
                Ok(grab) => {
                    let logic = logic.clone();
                    let current_id = current_id.clone();
                    let link = link.clone();
                    platform::on_key_edges(move |id, edge| {
                        if id != current_id.load(Ordering::Acquire) {
                            return;
                        }
                        let request = logic.lock().on_edge(edge);
                        log::debug!("hotkey {edge:?} -> {request:?}");
                        if let Some(request) = request {
                            let _ = link.send(command_for(request));
                        }
                    });
                    Some(grab)
                }
                Err(e) => {
                    log::warn!("no global hotkey: {e}");
                    None
                }
            }
        } else {
            None
        };
        Self {
            grab,
            portal: None,
            availability,
            logic,
            current_id,
            link,
        }
    }

    /// Grabs `spec` in `mode`. Returns the sentence for the panel.
    pub fn apply(&mut self, spec: HotkeySpec, mode: HotkeyMode) -> Result<String, String> {
        if let Some(request) = self.logic.lock().reset(mode) {
            let _ = self.link.send(command_for(request));
        }
        if let Some(portal) = &mut self.portal {
            return Ok(portal.bind(spec, mode));
        }
        let mode_text = match mode {
            HotkeyMode::Toggle => "press to toggle",
            HotkeyMode::PushToTalk => "hold to talk",
        };
        let grabbed = match (&mut self.grab, &self.availability) {
            (Some(grab), availability) => {
                grab.set(Some(spec))?;
                self.current_id.store(spec.id(), Ordering::Release);
                let caveat = match availability {
                    Availability::Limited(why) => format!(" {why}"),
                    _ => String::new(),
                };
                format!("{} active ({mode_text}).{caveat}", spec.label())
            }
            (None, Availability::Unavailable(why)) => {
                format!("{} saved, but not active: {why}", spec.label())
            }
            (None, _) => format!(
                "{} saved, but the hotkey could not be set up; bind `{}` as a desktop shortcut.",
                spec.label(),
                platform::SHORTCUT_COMMAND
            ),
        };
        Ok(grabbed)
    }

    /// No hotkey at all (the daemon's is empty): releases the grab, muting a held
    /// push-to-talk key first.
    pub fn clear(&mut self) -> Result<(), String> {
        if let Some(request) = self.logic.lock().reset(HotkeyMode::Toggle) {
            let _ = self.link.send(command_for(request));
        }
        self.current_id.store(0, Ordering::Release);
        if let Some(portal) = &mut self.portal {
            portal.unbind();
        }
        match &mut self.grab {
            Some(grab) => grab.set(None),
            None => Ok(()),
        }
    }

    pub fn is_grabbing(&self) -> bool {
        self.portal.as_ref().is_some_and(|p| p.is_bound())
            || self.grab.as_ref().is_some_and(|g| g.current().is_some())
    }

    /// Called on quit: a held push-to-talk key must not leave the mic live.
    pub fn release(&mut self) {
        if let Some(request) = self.logic.lock().reset(HotkeyMode::Toggle) {
            let _ = self.link.send(command_for(request));
        }
        if let Some(grab) = &mut self.grab {
            let _ = grab.set(None);
        }
        if let Some(portal) = &mut self.portal {
            portal.unbind();
        }
    }
}

fn command_for(request: HotkeyRequest) -> LinkCommand {
    match request {
        HotkeyRequest::Toggle => LinkCommand::Toggle(ChangeSource::Hotkey),
        HotkeyRequest::Mute => LinkCommand::Mute(ChangeSource::Hotkey),
        HotkeyRequest::Unmute => LinkCommand::Unmute(ChangeSource::Hotkey),
    }
}

pub struct App {
    pub window: PanelWindow,
    pub tray: Option<HardMuteTray>,
    link: Link,
    hotkey: RefCell<HotkeyAgent>,
    state: RefCell<Option<State>>,
    devices: RefCell<Vec<InputDevice>>,
    device_names: RefCell<Vec<Option<String>>>,
    /// `--demo-level`'s synthetic feed (drawn by the meter timer).
    level_feed: RefCell<Option<Box<dyn LevelFeed>>>,
    /// The daemon offers `level` events (drawn as they arrive).
    daemon_level: Cell<bool>,
    /// Whether the daemon's level was drawn since the meter last appeared (logged once).
    level_drawn: Cell<bool>,
    meter: slint::Timer,
    meter_running: Cell<bool>,
    /// The daemon's hotkey and mode the grab was last set up for.
    hotkey_applied: RefCell<Option<(Option<String>, hardmute_ipc::HotkeyMode)>>,
    /// "global hotkey ready" is logged once, when the first grab is active.
    hotkey_announced: Cell<bool>,
    /// A panel.toml from an older panel, handed to the daemon at the first connection.
    legacy_config: RefCell<Option<ConfigFile>>,
}

impl App {
    pub fn new(
        window: PanelWindow,
        tray: Option<HardMuteTray>,
        link: Link,
        hotkey: HotkeyAgent,
        level_feed: Option<Box<dyn LevelFeed>>,
        legacy_config: Option<ConfigFile>,
    ) -> Rc<Self> {
        window.set_version(env!("CARGO_PKG_VERSION").into());
        window.set_level_feed(level_feed.is_some());
        window.set_hotkey_status("The hotkey is kept by hardmuted; waiting for it…".into());
        // The portal answers later (the user confirms in the desktop's dialog).
        let weak_window = window.as_weak();
        hotkey.set_status_sink(Arc::new(move |text: String| {
            log::info!("hotkey: {text}");
            let _ = weak_window.upgrade_in_event_loop(move |w| w.set_hotkey_status(text.into()));
        }));
        window.set_status_line("Connecting to hardmuted…".into());
        let app = Rc::new(Self {
            window,
            tray,
            link,
            hotkey: RefCell::new(hotkey),
            state: RefCell::new(None),
            devices: RefCell::new(Vec::new()),
            device_names: RefCell::new(vec![None]),
            level_feed: RefCell::new(level_feed),
            daemon_level: Cell::new(false),
            level_drawn: Cell::new(false),
            meter: slint::Timer::default(),
            meter_running: Cell::new(false),
            hotkey_applied: RefCell::new(None),
            hotkey_announced: Cell::new(false),
            legacy_config: RefCell::new(legacy_config),
        });
        app.connect_callbacks();
        app
    }

    fn connect_callbacks(self: &Rc<Self>) {
        let weak = Rc::downgrade(self);
        self.window.on_state_clicked(move || {
            if let Some(app) = weak.upgrade() {
                app.request_flip(ChangeSource::Panel);
            }
        });
        let weak = Rc::downgrade(self);
        self.window.on_device_selected(move |index| {
            if let Some(app) = weak.upgrade() {
                let name = app.device_names.borrow().get(index as usize).cloned();
                if let Some(name) = name {
                    app.link.send(LinkCommand::SelectDevice(name));
                }
            }
        });
        let weak = Rc::downgrade(self);
        self.window.on_hotkey_apply(move |text, mode| {
            if let Some(app) = weak.upgrade() {
                app.request_hotkey(&text, mode_from_index(mode));
            }
        });
        let weak = Rc::downgrade(self);
        self.window.on_start_muted_changed(move |on| {
            if let Some(app) = weak.upgrade() {
                app.link
                    .send(LinkCommand::SetOption(DaemonOption::StartMuted(on)));
            }
        });
        let weak = Rc::downgrade(self);
        self.window.on_release_on_mute_changed(move |on| {
            if let Some(app) = weak.upgrade() {
                app.link
                    .send(LinkCommand::SetOption(DaemonOption::ReleaseOnMute(on)));
            }
        });
        let weak = Rc::downgrade(self);
        self.window.on_protect_clicked(move || {
            if let Some(app) = weak.upgrade() {
                app.protect_default();
            }
        });
        let weak = Rc::downgrade(self);
        self.window.on_check_clicked(move || {
            if let Some(app) = weak.upgrade() {
                app.run_check();
            }
        });
        let weak = Rc::downgrade(self);
        self.window.on_guard_toggled(move |on| {
            if let Some(app) = weak.upgrade() {
                app.request_guard(on);
            }
        });
        let weak = Rc::downgrade(self);
        self.window.on_refresh_listeners(move || {
            if let Some(app) = weak.upgrade() {
                app.link.send(LinkCommand::Refresh);
            }
        });

        if let Some(tray) = &self.tray {
            let weak = Rc::downgrade(self);
            tray.on_mute_clicked(move || {
                if let Some(app) = weak.upgrade() {
                    app.link.send(LinkCommand::Mute(ChangeSource::Tray));
                }
            });
            let weak = Rc::downgrade(self);
            tray.on_unmute_clicked(move || {
                if let Some(app) = weak.upgrade() {
                    if app.unmute_refused() {
                        return;
                    }
                    app.link.send(LinkCommand::Unmute(ChangeSource::Tray));
                }
            });
            let weak = Rc::downgrade(self);
            tray.on_protect_clicked(move || {
                if let Some(app) = weak.upgrade() {
                    app.protect_default();
                }
            });
            let weak = Rc::downgrade(self);
            tray.on_open_panel(move || {
                if let Some(app) = weak.upgrade() {
                    app.show_window();
                }
            });
            let weak = Rc::downgrade(self);
            tray.on_quit(move || {
                if let Some(app) = weak.upgrade() {
                    app.quit();
                }
            });
        }
    }

    /// Shows the panel window and brings it to the front (tray "Open panel", a second start of
    /// the panel). An already shown window is mapped again, which raises it.
    pub fn show_window(&self) {
        let window = self.window.window();
        if window.is_visible() {
            window.set_minimized(false);
            let _ = self.window.hide();
        }
        if let Err(e) = self.window.show() {
            log::error!("cannot show the panel: {e}");
        } else {
            log::info!("panel window shown");
        }
    }

    /// Another user owns the device: an unmute cannot work, so it is not sent; the user is
    /// told why instead.
    fn unmute_refused(&self) -> bool {
        let note = self.state.borrow().as_ref().and_then(view::owner_note);
        match note {
            Some(note) => {
                log::info!("unmute not offered: {note}");
                self.window.set_status_line(format!("⚠ {note}").into());
                true
            }
            None => false,
        }
    }

    /// The one-click fix for the default input (`hardmute protect`); a shown check table is
    /// checked again afterwards (the link runs the two in order).
    fn protect_default(&self) {
        log::info!("protect: making the HardMute Microphone the default input");
        self.link.send(LinkCommand::ProtectDefault);
        if self.window.get_check_rows().row_count() > 0 {
            self.run_check();
        }
    }

    /// "Check protection": `hardmute check --json`, run by the link off the UI thread.
    fn run_check(&self) {
        if self.window.get_check_running() {
            return;
        }
        let program = check::cli_program();
        log::info!("check: running {} check", program.display());
        self.window.set_check_running(true);
        self.link.send(LinkCommand::Check(program));
    }

    fn show_check(&self, result: Result<check::Report, String>) {
        self.window.set_check_running(false);
        match result {
            Ok(report) => {
                let summary = check::summary(&report);
                let rows: Vec<CheckRow> = report
                    .routes
                    .iter()
                    .map(|r| CheckRow {
                        route: r.route.clone().into(),
                        status: match r.status {
                            check::Verdict::Open => "OPEN",
                            check::Verdict::Closed => "closed",
                            check::Verdict::Unknown => "unknown",
                        }
                        .into(),
                        open: r.status == check::Verdict::Open,
                        detail: r.detail.clone().into(),
                        fix: r.fix.clone().into(),
                        fixable: r.one_click_fix().is_some(),
                    })
                    .collect();
                let listed: Vec<String> = rows
                    .iter()
                    .map(|r| {
                        format!(
                            "{}={}{}",
                            r.route,
                            r.status,
                            if r.fixable { " (one-click fix)" } else { "" }
                        )
                    })
                    .collect();
                log::info!("check: {summary} [{}]", listed.join("; "));
                self.window.set_check_summary(summary.into());
                self.window
                    .set_check_rows(ModelRc::new(VecModel::from(rows)));
            }
            Err(e) => {
                log::warn!("check failed: {e}");
                self.window
                    .set_check_summary(format!("The check could not run: {e}").into());
                self.window
                    .set_check_rows(ModelRc::new(VecModel::from(Vec::<CheckRow>::new())));
            }
        }
    }

    /// The guard's toggle: the daemon option `hardmute guard on|off` sends. A refusal is said
    /// beside it and the toggle goes back to the daemon's setting ([`LinkEvent::GuardFailed`]).
    fn request_guard(&self, on: bool) {
        let request = view::guard_request(self.state.borrow().as_ref(), on);
        match request {
            Ok(option) => {
                log::info!(
                    "guard: asking hardmuted to turn it {}",
                    if on { "on" } else { "off" }
                );
                self.window.set_guard_error("".into());
                self.link.send(LinkCommand::SetOption(option));
                // A shown check table has a guard row: checked again once the switch is made
                // (the link runs the two in order).
                if self.window.get_check_rows().row_count() > 0 {
                    self.run_check();
                }
            }
            Err(why) => self.guard_failed(&why),
        }
    }

    /// A guard request failed or could not be sent: said beside the toggle, which goes back to
    /// the daemon's setting (nothing changed).
    fn guard_failed(&self, why: &str) {
        let text = view::guard_error(why);
        log::warn!("guard: {text}");
        self.window.set_guard_error(text.into());
        self.show_guard();
    }

    /// The guard's control from the last state the daemon sent.
    fn show_guard(&self) {
        let guard = view::guard_view(self.state.borrow().as_ref(), cfg!(target_os = "linux"));
        if guard.line != self.window.get_guard_line().as_str() {
            log::info!("guard: {}", guard.line);
        }
        self.window.set_guard_shown(guard.toggle);
        self.window.set_guard_on(guard.on);
        self.window.set_guard_warning(guard.warning);
        self.window.set_guard_line(guard.line.into());
    }

    /// The state button does what its label says, from the state the user sees: a click on
    /// MUTED unmutes, a click on LIVE mutes (a toggle could undo a change the user has not seen
    /// yet).
    fn request_flip(&self, source: ChangeSource) {
        let muted = self.state.borrow().as_ref().map(|s| s.muted);
        match muted {
            Some(true) if self.unmute_refused() => {}
            Some(true) => self.link.send(LinkCommand::Unmute(source)),
            Some(false) => self.link.send(LinkCommand::Mute(source)),
            None => log::info!("no daemon: nothing to change"),
        }
    }

    /// The user typed a hotkey: checked here (a clear message at once), then stored by the
    /// daemon; it is grabbed when the daemon's state comes back with it. Empty = no hotkey.
    fn request_hotkey(&self, text: &str, mode: HotkeyMode) {
        let label = if text.trim().is_empty() {
            String::new()
        } else {
            match HotkeySpec::parse(text) {
                Ok(spec) => spec.label(),
                Err(e) => {
                    self.window.set_hotkey_status(e.to_string().into());
                    return;
                }
            }
        };
        if self.state.borrow().is_none() {
            self.window.set_hotkey_status(
                "hardmuted is not running; it keeps the hotkey, so it cannot be changed now."
                    .into(),
            );
            return;
        }
        self.link
            .send(LinkCommand::SetOption(DaemonOption::Hotkey(label)));
        self.link
            .send(LinkCommand::SetOption(DaemonOption::HotkeyMode(mode)));
    }

    /// Grabs what the daemon's state says, when it differs from what is grabbed. (Re-grabbing
    /// an unchanged hotkey on every state change would reset a held push-to-talk key.)
    fn follow_hotkey(&self, state: &State) {
        let wanted = (state.hotkey.clone(), state.hotkey_mode);
        if self.hotkey_applied.borrow().as_ref() == Some(&wanted) {
            return;
        }
        self.hotkey_applied.replace(Some(wanted));
        let mode = state.hotkey_mode;
        self.window.set_hotkey_mode(mode_index(mode));
        let status = match state.hotkey.as_deref() {
            None => {
                self.window.set_hotkey_label("".into());
                self.window.set_hotkey_text("".into());
                match self.hotkey.borrow_mut().clear() {
                    Ok(()) => format!(
                        "No global hotkey. Type one here, or bind `{}` as a desktop shortcut.",
                        platform::SHORTCUT_COMMAND
                    ),
                    Err(e) => e,
                }
            }
            Some(text) => match HotkeySpec::parse(text) {
                Ok(spec) => {
                    self.window.set_hotkey_label(spec.label().into());
                    self.window.set_hotkey_text(spec.label().into());
                    let result = self.hotkey.borrow_mut().apply(spec, mode);
                    result.unwrap_or_else(|e| e)
                }
                Err(e) => {
                    // Grab nothing rather than a key the daemon no longer names.
                    self.window.set_hotkey_label("".into());
                    self.window.set_hotkey_text(text.into());
                    let released = self.hotkey.borrow_mut().clear();
                    let mut status = format!("hardmuted's hotkey {text:?} is not usable: {e}");
                    if let Err(why) = released {
                        status.push_str(&format!(" ({why})"));
                    }
                    status
                }
            },
        };
        log::info!("hotkey: {status}");
        self.window.set_hotkey_status(status.into());
        if self.hotkey_active() && !self.hotkey_announced.replace(true) {
            log::info!("global hotkey ready");
        }
    }

    /// Hands a panel.toml left by an older panel (which kept the hotkey itself) to the daemon,
    /// once: the file is renamed `panel.toml.migrated` whatever it held.
    fn migrate_legacy_config(&self) {
        let Some(file) = self.legacy_config.take() else {
            return;
        };
        let Some(legacy) = file.take_legacy() else {
            return;
        };
        log::info!(
            "moving the hotkey {:?} ({:?}) from {} to hardmuted",
            legacy.hotkey,
            legacy.mode,
            file.path().display()
        );
        self.link
            .send(LinkCommand::SetOption(DaemonOption::Hotkey(legacy.hotkey)));
        self.link
            .send(LinkCommand::SetOption(DaemonOption::HotkeyMode(
                legacy.mode,
            )));
    }

    pub fn hotkey_active(&self) -> bool {
        self.hotkey.borrow().is_grabbing()
    }

    /// Mutes a held push-to-talk key, releases the grab and leaves the event loop.
    pub fn quit(&self) {
        self.hotkey.borrow_mut().release();
        // Give the command thread a moment to deliver a push-to-talk mute.
        std::thread::sleep(Duration::from_millis(100));
        let _ = slint::quit_event_loop();
    }

    /// Handles every event waiting in `events` (tests; the app posts events one by one).
    pub fn pump(self: &Rc<Self>, events: &Receiver<LinkEvent>) -> usize {
        let mut handled = 0;
        while let Ok(event) = events.try_recv() {
            self.handle(event);
            handled += 1;
        }
        handled
    }

    pub fn handle(self: &Rc<Self>, event: LinkEvent) {
        match event {
            LinkEvent::State(state) => self.show_state(state),
            LinkEvent::LevelFeed(available) => {
                self.daemon_level.set(available);
                self.update_meter();
            }
            LinkEvent::Level(level) => {
                let demo = self.level_feed.borrow().is_some();
                if !demo && self.window.get_meter_shown() {
                    self.window.set_level(meter_position(level.peak));
                    if !self.level_drawn.replace(true) {
                        log::info!("meter: drawing hardmuted's level (peak {:.3})", level.peak);
                    }
                }
            }
            LinkEvent::Disconnected(why) => {
                self.state.replace(None);
                self.daemon_level.set(false);
                self.window.set_connected(false);
                self.window.set_status_line(why.into());
                self.window.set_default_note("".into());
                self.window.set_owner_note("".into());
                self.window.set_can_unmute(true);
                self.window.set_guard_error("".into());
                self.show_guard();
                if let Some(tray) = &self.tray {
                    tray.set_connected(false);
                    tray.set_tooltip_text(view::tray_tooltip(None).into());
                    tray.set_default_unprotected(false);
                    tray.set_can_unmute(true);
                }
                self.update_meter();
            }
            LinkEvent::Devices(devices) => {
                self.devices.replace(devices);
                self.show_devices();
            }
            LinkEvent::Listeners(listeners) => {
                let (rows, direct, note) = view::listener_rows(&listeners);
                let rows: Vec<ListenerRow> = rows
                    .into_iter()
                    .map(|r| ListenerRow {
                        app: r.app.into(),
                        target: r.target.into(),
                        direct: r.direct,
                    })
                    .collect();
                self.window
                    .set_listeners(ModelRc::new(VecModel::from(rows)));
                self.window.set_direct_listeners(direct as i32);
                self.window.set_listeners_note(note.into());
            }
            LinkEvent::RequestFailed(why) => {
                self.window.set_status_line(format!("⚠ {why}").into());
            }
            LinkEvent::GuardFailed(why) => self.guard_failed(&why),
            LinkEvent::Check(result) => self.show_check(result),
        }
    }

    fn show_state(self: &Rc<Self>, state: State) {
        self.window.set_connected(true);
        self.window.set_muted(state.muted);
        self.window
            .set_status_line(view::status_line(&state).into());
        self.window.set_start_muted(state.start_muted);
        self.window.set_release_on_mute(state.release_on_mute);
        self.window.set_physical_open(state.physical_open);
        let default_note = view::default_input_note(&state).unwrap_or_default();
        let owner_note = view::owner_note(&state).unwrap_or_default();
        if default_note != self.window.get_default_note().as_str() && !default_note.is_empty() {
            log::warn!("{default_note}");
        }
        if owner_note != self.window.get_owner_note().as_str() && !owner_note.is_empty() {
            log::warn!("{owner_note}");
        }
        self.window.set_default_note(default_note.into());
        self.window.set_owner_note(owner_note.into());
        self.window.set_can_unmute(view::can_unmute(&state));
        if let Some(tray) = &self.tray {
            tray.set_connected(true);
            tray.set_muted(state.muted);
            tray.set_can_unmute(view::can_unmute(&state));
            tray.set_default_unprotected(state.default_input_protected == Some(false));
            tray.set_tooltip_text(view::tray_tooltip(Some(&state)).into());
        }
        self.follow_hotkey(&state);
        // A refusal said beside the guard stays until the next click, or until the setting
        // changes (from the CLI, say): then it no longer describes what is shown.
        let guard_setting = |s: &State| s.guard.as_ref().map(|g| g.on);
        if self.state.borrow().as_ref().map(guard_setting) != Some(guard_setting(&state)) {
            self.window.set_guard_error("".into());
        }
        self.state.replace(Some(state));
        self.show_guard();
        self.migrate_legacy_config();
        self.show_devices();
        self.update_meter();
    }

    fn show_devices(&self) {
        let current = self.state.borrow().as_ref().and_then(|s| s.device.clone());
        let choices = view::device_choices(&self.devices.borrow(), current.as_deref());
        let labels: Vec<SharedString> = choices.labels.into_iter().map(Into::into).collect();
        self.window
            .set_devices(ModelRc::new(VecModel::from(labels)));
        self.window.set_device_index(choices.selected as i32);
        self.device_names.replace(choices.names);
    }

    /// Shows the meter only while live (the daemon sends no level while muted). The demo
    /// feed's timer runs only while the meter is drawn; the daemon's level is drawn as its
    /// events arrive. No feed, no daemon, muted or a released mic cost nothing.
    fn update_meter(self: &Rc<Self>) {
        let connected = self.window.get_connected();
        let open = self.window.get_physical_open();
        let muted = self.window.get_muted();
        let demo = self.level_feed.borrow().is_some();
        let feed = demo || self.daemon_level.get();
        self.window.set_level_feed(feed);
        self.window
            .set_level_note(view::level_note(connected, feed, open, muted).into());
        if !self.window.get_meter_shown() {
            self.window.set_level(0.0);
            self.level_drawn.set(false);
        }
        let wanted = connected && open && !muted && demo;
        if wanted == self.meter_running.get() {
            return;
        }
        self.meter_running.set(wanted);
        if !wanted {
            self.meter.stop();
            self.window.set_level(0.0);
            return;
        }
        let weak = Rc::downgrade(self);
        self.meter.start(
            slint::TimerMode::Repeated,
            Duration::from_millis(METER_INTERVAL_MS),
            move || {
                if let Some(app) = weak.upgrade() {
                    if let Some(feed) = app.level_feed.borrow_mut().as_mut() {
                        app.window.set_level(feed.level());
                    }
                }
            },
        );
    }
}
