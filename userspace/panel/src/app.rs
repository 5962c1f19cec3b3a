//! Wires the Slint window and tray to the daemon link and the hotkey. Runs on the UI thread;
//! link events reach it through [`App::handle`] (posted by the app's event sink, or pumped by
//! tests with [`App::pump`]).

use crate::config::{ConfigFile, PanelConfig};
use crate::hotkey::platform::{self, Availability, HotkeyGrab};
use crate::hotkey::{HotkeyLogic, HotkeyMode, HotkeyRequest, HotkeySpec};
use crate::level::{LevelFeed, METER_INTERVAL_MS};
use crate::link::{Link, LinkCommand, LinkEvent};
use crate::ui::{HardMuteTray, ListenerRow, PanelWindow};
use crate::view;
use hardmute_ipc::{ChangeSource, DaemonOption, InputDevice, State};
use parking_lot::Mutex;
use slint::{ComponentHandle, ModelRc, SharedString, VecModel};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

/// The global hotkey as the app runs it: the grab (absent when the session has none), the
/// key-edge logic shared with the platform's event thread, and the saved settings.
pub struct HotkeyAgent {
    grab: Option<HotkeyGrab>,
    availability: Availability,
    logic: Arc<Mutex<HotkeyLogic>>,
    current_id: Arc<AtomicU32>,
    config: Option<ConfigFile>,
    link: Sender<LinkCommand>,
}

impl HotkeyAgent {
    /// Sets up the grab if this session can have one and routes its key edges to `link`.
    /// `grab = false` (tests, `--no-hotkey`) keeps only the settings.
    pub fn new(
        grab: bool,
        config: Option<ConfigFile>,
        mode: HotkeyMode,
        link: Sender<LinkCommand>,
    ) -> Self {
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
            availability,
            logic,
            current_id,
            config,
            link,
        }
    }

    /// Grabs `spec` in `mode` (and saves both). Returns the sentence for the panel.
    pub fn apply(&mut self, spec: HotkeySpec, mode: HotkeyMode) -> Result<String, String> {
        if let Some(request) = self.logic.lock().reset(mode) {
            let _ = self.link.send(command_for(request));
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
        if let Some(config) = &self.config {
            let saved = PanelConfig {
                hotkey: spec.label(),
                mode,
            };
            if let Err(e) = config.save(&saved) {
                log::warn!("cannot save {}: {e}", config.path().display());
            }
        }
        Ok(grabbed)
    }

    pub fn is_grabbing(&self) -> bool {
        self.grab.as_ref().is_some_and(|g| g.current().is_some())
    }

    /// Called on quit: a held push-to-talk key must not leave the mic live.
    pub fn release(&mut self) {
        if let Some(request) = self.logic.lock().reset(HotkeyMode::Toggle) {
            let _ = self.link.send(command_for(request));
        }
        if let Some(grab) = &mut self.grab {
            let _ = grab.set(None);
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
    level_feed: RefCell<Option<Box<dyn LevelFeed>>>,
    meter: slint::Timer,
    meter_running: Cell<bool>,
}

impl App {
    pub fn new(
        window: PanelWindow,
        tray: Option<HardMuteTray>,
        link: Link,
        hotkey: HotkeyAgent,
        hotkey_config: &PanelConfig,
        level_feed: Option<Box<dyn LevelFeed>>,
    ) -> Rc<Self> {
        window.set_version(env!("CARGO_PKG_VERSION").into());
        window.set_level_feed(level_feed.is_some());
        window.set_hotkey_text(hotkey_config.hotkey.as_str().into());
        window.set_hotkey_mode(hotkey_config.mode.index());
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
            meter: slint::Timer::default(),
            meter_running: Cell::new(false),
        });
        app.connect_callbacks();
        app.apply_hotkey(&hotkey_config.hotkey, hotkey_config.mode);
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
                app.apply_hotkey(&text, HotkeyMode::from_index(mode));
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
                    app.link.send(LinkCommand::Unmute(ChangeSource::Tray));
                }
            });
            let weak = Rc::downgrade(self);
            tray.on_open_panel(move || {
                if let Some(app) = weak.upgrade() {
                    if let Err(e) = app.window.show() {
                        log::error!("cannot show the panel: {e}");
                    }
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

    /// The state button does what its label says, from the state the user sees: a click on
    /// MUTED unmutes, a click on LIVE mutes (a toggle could undo a change the user has not seen
    /// yet).
    fn request_flip(&self, source: ChangeSource) {
        let muted = self.state.borrow().as_ref().map(|s| s.muted);
        match muted {
            Some(true) => self.link.send(LinkCommand::Unmute(source)),
            Some(false) => self.link.send(LinkCommand::Mute(source)),
            None => log::info!("no daemon: nothing to change"),
        }
    }

    fn apply_hotkey(&self, text: &str, mode: HotkeyMode) {
        let status = match HotkeySpec::parse(text) {
            Ok(spec) => {
                let result = self.hotkey.borrow_mut().apply(spec, mode);
                if result.is_ok() {
                    self.window.set_hotkey_label(spec.label().into());
                    self.window.set_hotkey_text(spec.label().into());
                }
                result.unwrap_or_else(|e| e)
            }
            Err(e) => e.to_string(),
        };
        log::info!("hotkey: {status}");
        self.window.set_hotkey_status(status.into());
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
            LinkEvent::Disconnected(why) => {
                self.state.replace(None);
                self.window.set_connected(false);
                self.window.set_status_line(why.into());
                if let Some(tray) = &self.tray {
                    tray.set_connected(false);
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
        if let Some(tray) = &self.tray {
            tray.set_connected(true);
            tray.set_muted(state.muted);
        }
        self.state.replace(Some(state));
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

    /// Runs the meter timer only while the meter is drawn: no feed, no daemon or a released
    /// mic cost nothing.
    fn update_meter(self: &Rc<Self>) {
        let connected = self.window.get_connected();
        let open = self.window.get_physical_open();
        let feed = self.level_feed.borrow().is_some();
        self.window
            .set_level_note(view::level_note(connected, feed, open).into());
        let wanted = connected && open && feed;
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
