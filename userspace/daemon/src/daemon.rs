//! The state owner: one backend, the persisted settings, and the subscribers to tell.
//!
//! Every change goes through [`Daemon::execute`] under one lock, so the backend, the saved
//! file and the events subscribers see always agree, in order.
//!
//! The level feed (`subscribe_level`) is sent only while live with the physical mic open:
//! [`Daemon::publish_level`] checks the driver's mute flag under the same lock every mute takes,
//! so no level event leaves after a mute has returned. Same-user processes can open the
//! socket; while muted, a level stream would be exactly the side channel the PETS 2022 paper
//! measured, while live apps already hear the audio itself.

use crate::backend::{Backend, BackendError, BackendOptions};
use crate::default_input::{self, DefaultInputOs, DefaultStatus, Plan};
use crate::store::{Settings, StateStore};
use hardmute_ipc::{
    ChangeSource, Command, DaemonOption, ErrorBody, ErrorKind, Event, Level, Reply, ServerMessage,
    State, LEVEL_MAX_HZ,
};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::{Duration, Instant};

/// How often the OS's default input is read again while idle (a user picking another default
/// shows in status within this). Each read on Linux is one short `pw-metadata` process.
const DEFAULT_REFRESH: Duration = Duration::from_secs(3);

/// Where a connection's outgoing messages go (its writer thread drains it).
pub type Outbox = SyncSender<ServerMessage>;

struct Inner {
    backend: Box<dyn Backend>,
    settings: Settings,
    store: StateStore,
    subscribers: Vec<Outbox>,
    /// The last state sent to subscribers, counters left out (they change every cycle).
    last_announced: Option<State>,
    /// Connections that asked for `level` events.
    level_subscribers: Vec<Outbox>,
    /// The backend's level window last sent (a new event only for a new window).
    last_level_window: u64,
    /// Live at the last level tick. The first live tick only notes the window count: that
    /// window was measured while muted (zeros), and sending it would say "silence" for nothing.
    level_live: bool,
    /// The driver's last "another user owns the virtual mic" refusal, shown in the state until
    /// a change of ours succeeds.
    not_owner: Option<String>,
    /// The OS's default input as last read (`None` = not managed or unreadable).
    default_status: Option<DefaultStatus>,
}

pub struct Daemon {
    inner: Mutex<Inner>,
    stopping: AtomicBool,
    /// Reads and sets the OS's default input (`None`: this backend has no OS default to manage).
    /// Its own lock: a read can take a process spawn, which must not hold up a mute.
    default_os: Mutex<Option<Box<dyn DefaultInputOs>>>,
    /// When the default was last read.
    default_read: Mutex<Option<Instant>>,
    /// `restore_default` ran (uninstall): this run does not claim the default again.
    default_released: AtomicBool,
}

impl Daemon {
    /// Loads the saved settings and starts `make_backend`'s backend with them, muted unless the
    /// saved state says otherwise.
    pub fn start(
        store: StateStore,
        make_backend: impl FnOnce(BackendOptions) -> Result<Box<dyn Backend>, BackendError>,
    ) -> Result<Self, BackendError> {
        Self::start_with_default(store, make_backend, crate::backend::default_input)
    }

    /// As [`Daemon::start`], with the OS default-input layer chosen by `make_default` from the
    /// backend's name (tests pass an in-memory one).
    pub fn start_with_default(
        store: StateStore,
        make_backend: impl FnOnce(BackendOptions) -> Result<Box<dyn Backend>, BackendError>,
        make_default: impl FnOnce(&str) -> Option<Box<dyn DefaultInputOs>>,
    ) -> Result<Self, BackendError> {
        let (mut settings, _origin) = store.load();
        let options = BackendOptions {
            fade_ms: settings.fade_ms,
            device: settings.device.clone(),
            release_on_mute: settings.release_on_mute,
            guard: settings.guard,
        };
        let mut backend = make_backend(options)?;
        let muted = settings.initially_muted();
        let mut not_owner = None;
        match backend.start(muted) {
            // The driver belongs to another user: stay up, muted, and say why (status, panel).
            Err(BackendError::NotOwner(why)) if !muted => {
                log::warn!("{why}; starting muted");
                not_owner = Some(why);
                backend.start(true)?;
            }
            other => other?,
        }
        // A backend that started muted but was refused the device (Windows: the bridge) says so.
        if not_owner.is_none() {
            not_owner = backend.not_owner();
        }
        if let Some(why) = &not_owner {
            log::warn!("not the owner: {why}; serving muted (mute allowed, unmute refused)");
        }
        if let Some(device) = settings.device.clone() {
            // A saved input that is gone (unplugged) is not fatal: use the default, say so.
            if let Err(e) = backend.select_input(Some(&device)) {
                log::warn!(
                    "saved input {device:?} is not available ({e}); using the default input"
                );
                settings.device = None;
                if let Err(e) = backend.select_input(None) {
                    log::warn!("could not select the default input: {e}");
                }
            }
        }
        settings.muted = backend.hard_mute();
        let mut default_os = make_default(backend.name());
        let mut default_status = None;
        if let Some(os) = default_os.as_deref_mut() {
            // Claim the default input once after an install (HardMute's device exists now).
            default_status = match os.current() {
                Ok(current) => {
                    let plan = default_input::on_start(
                        &settings.default_input,
                        current.as_deref(),
                        os.hardmute_id(),
                        settings.device.as_deref(),
                    );
                    Some(apply_plan(os, backend.as_mut(), &mut settings, plan))
                }
                Err(e) => {
                    log::warn!("cannot read the default input: {e}");
                    None
                }
            };
        }
        if let Err(e) = store.save(&settings) {
            log::error!(
                "could not save the state to {}: {e}",
                store.path().display()
            );
        }
        log::info!(
            "{} backend started {} (state file {})",
            backend.name(),
            if settings.muted { "MUTED" } else { "unmuted" },
            store.path().display()
        );
        Ok(Self {
            inner: Mutex::new(Inner {
                backend,
                settings,
                store,
                subscribers: Vec::new(),
                last_announced: None,
                level_subscribers: Vec::new(),
                last_level_window: 0,
                level_live: false,
                not_owner,
                default_status,
            }),
            stopping: AtomicBool::new(false),
            default_os: Mutex::new(default_os),
            default_read: Mutex::new(Some(Instant::now())),
            default_released: AtomicBool::new(false),
        })
    }

    fn state_of(inner: &Inner) -> State {
        let status = inner.backend.status();
        State {
            muted: status.muted,
            generation: status.generation,
            source: status.source,
            backend: inner.backend.name().to_owned(),
            device: status.device,
            release_on_mute: inner.settings.release_on_mute,
            start_muted: inner.settings.start_muted,
            fade_ms: inner.settings.fade_ms,
            hotkey: inner.settings.hotkey().map(str::to_owned),
            hotkey_mode: inner.settings.hotkey_mode,
            physical_open: status.physical_open,
            counters: status.counters,
            not_owner: inner
                .not_owner
                .clone()
                .or_else(|| inner.backend.not_owner()),
            default_input: inner.default_status.as_ref().and_then(|d| d.name.clone()),
            default_input_protected: inner.default_status.as_ref().map(|d| d.protected),
            guard: inner.backend.guard(),
        }
    }

    pub fn state(&self) -> State {
        Self::state_of(&self.inner.lock())
    }

    /// Whether the hotkey is set to push-to-talk (an unmute by the hotkey is then a hold).
    pub fn hotkey_is_push_to_talk(&self) -> bool {
        self.inner.lock().settings.hotkey_mode == hardmute_ipc::HotkeyMode::PushToTalk
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Runs one request. `outbox` is the requesting connection's, for `subscribe`.
    /// The response to a `subscribe` is queued here, before any event, so the client sees the
    /// starting state first; for every other command the caller sends the returned reply.
    pub fn execute(
        &self,
        id: u64,
        command: Command,
        outbox: &Outbox,
    ) -> Result<Option<Reply>, ErrorBody> {
        if self.is_stopping() {
            return Err(ErrorBody::new(
                ErrorKind::ShuttingDown,
                "hardmuted is shutting down",
            ));
        }
        let mut inner = self.inner.lock();
        let reply = match command {
            Command::Status => Reply::State(Self::state_of(&inner)),
            Command::Mute { source } => Self::set_muted(&mut inner, true, source)?,
            Command::Unmute { source } => Self::set_muted(&mut inner, false, source)?,
            Command::Toggle { source } => {
                let muted = inner.backend.hard_mute();
                Self::set_muted(&mut inner, !muted, source)?
            }
            Command::Subscribe => {
                // Send any change not yet announced to the earlier subscribers first: the reply
                // below carries the current state, and the next poll must not announce it again
                // as if it were new (a new subscriber would see its first state twice).
                Self::announce(&mut inner);
                let state = Self::state_of(&inner);
                match outbox.try_send(ServerMessage::response(id, Reply::State(state))) {
                    Ok(()) => inner.subscribers.push(outbox.clone()),
                    Err(_) => {
                        return Err(ErrorBody::new(
                            ErrorKind::Busy,
                            "connection is not reading its messages",
                        ));
                    }
                }
                return Ok(None);
            }
            Command::Devices => Reply::Devices {
                devices: inner.backend.physical_inputs()?,
            },
            Command::Listeners => Reply::Listeners {
                listeners: inner.backend.listeners()?,
            },
            Command::SelectDevice { device } => {
                inner.backend.select_input(device.as_deref())?;
                inner.settings.device = device;
                Self::save(&inner);
                Self::announce(&mut inner);
                Reply::State(Self::state_of(&inner))
            }
            Command::SetOption { option } => {
                match option {
                    DaemonOption::ReleaseOnMute(release) => {
                        inner.backend.set_release_on_mute(release)?;
                        inner.settings.release_on_mute = release;
                    }
                    DaemonOption::StartMuted(start_muted) => {
                        inner.settings.start_muted = start_muted
                    }
                    DaemonOption::Hotkey(hotkey) => {
                        check_hotkey(&hotkey)?;
                        inner.settings.hotkey = hotkey;
                    }
                    DaemonOption::HotkeyMode(mode) => inner.settings.hotkey_mode = mode,
                    DaemonOption::Guard(on) => {
                        inner.backend.set_guard(on)?;
                        inner.settings.guard = on;
                    }
                }
                Self::save(&inner);
                Self::announce(&mut inner);
                Reply::State(Self::state_of(&inner))
            }
            Command::SubscribeLevel => {
                inner.level_subscribers.push(outbox.clone());
                Reply::LevelSubscribed { hz: LEVEL_MAX_HZ }
            }
            Command::ProtectDefault | Command::RestoreDefault => {
                let protect = command == Command::ProtectDefault;
                drop(inner);
                return self.change_default(protect).map(Some);
            }
        };
        Ok(Some(reply))
    }

    /// `protect_default` / `restore_default`: one decision of [`default_input`], applied.
    fn change_default(&self, protect: bool) -> Result<Reply, ErrorBody> {
        let mut os_slot = self.default_os.lock();
        let Some(os) = os_slot.as_deref_mut() else {
            return Err(ErrorBody::new(
                ErrorKind::Backend,
                "this backend does not manage the OS's default input",
            ));
        };
        let current = os.current().map_err(|e| {
            ErrorBody::new(
                ErrorKind::Backend,
                format!("reading the default input: {e}"),
            )
        })?;
        let mut inner = self.inner.lock();
        let plan = if protect {
            default_input::protect(
                &inner.settings.default_input,
                current.as_deref(),
                os.hardmute_id(),
                inner.settings.device.as_deref(),
            )
        } else {
            default_input::restore(
                &inner.settings.default_input,
                current.as_deref(),
                os.hardmute_id(),
            )
        };
        let wanted = plan.set_default.clone();
        self.default_released.store(!protect, Ordering::Release);
        let inner = &mut *inner;
        let status = apply_plan(os, inner.backend.as_mut(), &mut inner.settings, plan);
        inner.default_status = Some(status.clone());
        *self.default_read.lock() = Some(Instant::now());
        Self::save(inner);
        Self::announce(inner);
        match wanted {
            Some(w) if status.name.as_deref() != Some(w.as_str()) => Err(ErrorBody::new(
                ErrorKind::Backend,
                format!(
                    "asked the OS to make {w:?} the default input, but the default is still {:?}",
                    status.name
                ),
            )),
            _ => Ok(Reply::State(Self::state_of(inner))),
        }
    }

    /// Reads the OS's default input again if [`DEFAULT_REFRESH`] has passed (outside the state
    /// lock), and records it for status.
    fn refresh_default(&self) {
        {
            let mut read = self.default_read.lock();
            if read.is_some_and(|t| t.elapsed() < DEFAULT_REFRESH) {
                return;
            }
            *read = Some(Instant::now());
        }
        let mut os_slot = self.default_os.lock();
        let Some(os) = os_slot.as_deref_mut() else {
            return;
        };
        let current = match os.current() {
            Ok(current) => current,
            Err(e) => {
                log::debug!("cannot read the default input: {e}");
                self.inner.lock().default_status = None;
                return;
            }
        };
        let mut inner = self.inner.lock();
        if !inner.settings.default_input.claimed && !self.default_released.load(Ordering::Acquire) {
            // The claim at start failed (the session manager was not up yet at login): again.
            let plan = default_input::on_start(
                &inner.settings.default_input,
                current.as_deref(),
                os.hardmute_id(),
                inner.settings.device.as_deref(),
            );
            let inner = &mut *inner;
            let status = apply_plan(os, inner.backend.as_mut(), &mut inner.settings, plan);
            inner.default_status = Some(status);
            Self::save(inner);
            return;
        }
        let status = Some(default_input::status(current.as_deref(), os.hardmute_id()));
        drop(os_slot);
        if let Some(s) = &status {
            if !s.protected
                && inner
                    .default_status
                    .as_ref()
                    .is_none_or(|old| old.protected)
            {
                log::warn!(
                    "the default input is now {:?}, not the HardMute Microphone: apps that record \
                     the default are NOT protected by the mute (`hardmute protect` fixes it)",
                    s.name
                );
            }
        }
        inner.default_status = status;
    }

    /// Sends the backend's newest level window to every level subscriber, if the mic is live
    /// with the physical mic open (else nothing). Called [`LEVEL_MAX_HZ`] times a second by the
    /// server. A subscriber whose queue is full misses this one; a gone one is dropped.
    pub fn publish_level(&self) {
        let mut inner = self.inner.lock();
        if inner.backend.hard_mute() {
            inner.level_live = false;
            return;
        }
        if inner.level_subscribers.is_empty() || self.is_stopping() {
            return;
        }
        if !inner.backend.status().physical_open {
            inner.level_live = false;
            return;
        }
        let Some(reading) = inner.backend.level() else {
            return;
        };
        if !std::mem::replace(&mut inner.level_live, true) {
            inner.last_level_window = reading.windows;
            return;
        }
        if reading.windows == inner.last_level_window {
            return; // nothing measured since the last event
        }
        inner.last_level_window = reading.windows;
        let message = ServerMessage::event(Event::Level(Level {
            peak: reading.peak,
            rms: reading.rms,
        }));
        inner
            .level_subscribers
            .retain(|outbox| match outbox.try_send(message.clone()) {
                Ok(()) | Err(TrySendError::Full(_)) => true,
                Err(TrySendError::Disconnected(_)) => false,
            });
    }

    /// Fail closed across a crash (invariant 4): a mute is saved *before* it is applied and an
    /// unmute only *after*, so a daemon killed between the two restarts muted (the restart
    /// applies the saved state).
    fn set_muted(inner: &mut Inner, muted: bool, source: ChangeSource) -> Result<Reply, ErrorBody> {
        if muted && !inner.settings.muted {
            inner.settings.muted = true;
            Self::save(inner);
        }
        let result = inner.backend.set_hard_mute(muted, source);
        // Whatever happened, persist and announce what the driver now holds.
        let now = inner.backend.hard_mute();
        if now != inner.settings.muted {
            inner.settings.muted = now;
            Self::save(inner);
        }
        match &result {
            Err(BackendError::NotOwner(why)) => inner.not_owner = Some(why.clone()),
            Ok(()) if !muted => inner.not_owner = None,
            _ => {}
        }
        Self::announce(inner);
        match result {
            Ok(()) => {
                log::info!("{} by {source}", if muted { "muted" } else { "unmuted" });
                Ok(Reply::State(Self::state_of(inner)))
            }
            Err(e) => {
                log::error!("could not {}: {e}", if muted { "mute" } else { "unmute" });
                Err(e.into())
            }
        }
    }

    fn save(inner: &Inner) {
        if let Err(e) = inner.store.save(&inner.settings) {
            log::error!(
                "could not save the state to {}: {e}",
                inner.store.path().display()
            );
        }
    }

    /// Sends the current state to every subscriber if it differs from the last one sent.
    /// A subscriber that has gone, or is so far behind that its queue is full, is dropped
    /// (never blocks the daemon).
    fn announce(inner: &mut Inner) {
        let state = Self::state_of(inner);
        let comparable = State {
            counters: Default::default(),
            ..state.clone()
        };
        if inner.last_announced.as_ref() == Some(&comparable) {
            return;
        }
        inner.last_announced = Some(comparable);
        let message = ServerMessage::event(Event::State(state));
        inner
            .subscribers
            .retain(|outbox| match outbox.try_send(message.clone()) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    log::warn!("dropping a subscriber that stopped reading its events");
                    false
                }
                Err(TrySendError::Disconnected(_)) => false,
            });
    }

    /// Announces changes made outside the daemon (another client of the driver, an OS mute
    /// control, a fail-safe). Called periodically by the server.
    pub fn poll_changes(&self) {
        self.refresh_default();
        let mut inner = self.inner.lock();
        inner.backend.poll();
        let muted = inner.backend.hard_mute();
        if muted != inner.settings.muted {
            inner.settings.muted = muted;
            Self::save(&inner);
        }
        Self::announce(&mut inner);
    }

    /// Stops the backend (the virtual mic fails closed), saves, and tells subscribers.
    pub fn shutdown(&self) {
        if self.stopping.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut inner = self.inner.lock();
        inner.settings.muted = inner.backend.hard_mute();
        Self::save(&inner);
        inner.backend.stop();
        let goodbye = ServerMessage::error(
            None,
            ErrorBody::new(ErrorKind::ShuttingDown, "hardmuted is shutting down"),
        );
        for outbox in inner.subscribers.drain(..) {
            let _ = outbox.try_send(goodbye.clone());
        }
        inner.level_subscribers.clear();
        log::info!("backend stopped, state saved");
    }
}

/// Carries out one default-input decision: sets the OS default, remembers what it replaced
/// (only once the OS took it), and moves the bridge to the input the plan names. Returns what
/// the OS's default is afterwards (re-read for up to a second: the session manager applies a
/// new default asynchronously).
fn apply_plan(
    os: &mut dyn DefaultInputOs,
    backend: &mut dyn Backend,
    settings: &mut Settings,
    plan: Plan,
) -> DefaultStatus {
    let hardmute = os.hardmute_id().to_owned();
    let mut set_ok = true;
    if let Some(name) = &plan.set_default {
        match os.set(name) {
            Ok(()) => log::info!("default input set to {name:?}"),
            Err(e) => {
                log::warn!("could not make {name:?} the default input: {e}");
                set_ok = false;
            }
        }
    }
    if set_ok {
        if let Some(remember) = plan.remember {
            settings.default_input = remember;
        }
        if let Some(device) = &plan.feed_from {
            match backend.select_input(Some(device)) {
                Ok(()) => settings.device = Some(device.clone()),
                Err(e) => log::warn!("could not feed HardMute from {device:?}: {e}"),
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let current = os.current().ok().flatten();
        let done = match &plan.set_default {
            Some(wanted) => current.as_deref() == Some(wanted.as_str()),
            None => true,
        };
        if done || !set_ok || Instant::now() >= deadline {
            return default_input::status(current.as_deref(), &hardmute);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The daemon stores the hotkey for the frontends and does not grab it, but it refuses text
/// that cannot be a key combination (modifiers and one key joined by `+`), so a typo from the
/// CLI is an error here rather than a silently dead hotkey. `""` = no hotkey.
fn check_hotkey(hotkey: &str) -> Result<(), ErrorBody> {
    let well_formed = hotkey.is_empty()
        || (hotkey.len() <= 64
            && hotkey
                .split('+')
                .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric())));
    if well_formed {
        Ok(())
    } else {
        let shown: String = hotkey.chars().take(64).collect();
        Err(ErrorBody::new(
            ErrorKind::BadRequest,
            format!("{shown:?} is not a hotkey: modifiers and one key joined by '+', e.g. Ctrl+Alt+M (empty = none)"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::BackendStatus;
    use hardmute_ipc::{Counters, InputDevice, Listener};
    use std::sync::mpsc::sync_channel;

    /// A driver that refuses to unmute (as a failing one would), to check the daemon reports
    /// the failure and keeps what the driver holds.
    struct StuckMuted;

    impl Backend for StuckMuted {
        fn name(&self) -> &'static str {
            "stuck"
        }
        fn start(&mut self, _initial_muted: bool) -> Result<(), BackendError> {
            Ok(())
        }
        fn set_hard_mute(
            &mut self,
            muted: bool,
            _source: ChangeSource,
        ) -> Result<(), BackendError> {
            if muted {
                Ok(())
            } else {
                Err(BackendError::Failed("driver unreachable".into()))
            }
        }
        fn hard_mute(&self) -> bool {
            true
        }
        fn status(&self) -> BackendStatus {
            BackendStatus::not_running(None)
        }
        fn physical_inputs(&self) -> Result<Vec<InputDevice>, BackendError> {
            Ok(Vec::new())
        }
        fn select_input(&mut self, name: Option<&str>) -> Result<(), BackendError> {
            match name {
                None => Ok(()),
                Some(name) => Err(BackendError::UnknownInput {
                    name: name.into(),
                    available: Vec::new(),
                }),
            }
        }
        fn listeners(&self) -> Result<Vec<Listener>, BackendError> {
            Err(BackendError::NotRunning)
        }
        fn set_release_on_mute(&mut self, _release: bool) -> Result<(), BackendError> {
            Ok(())
        }
        fn stop(&mut self) {}
    }

    #[test]
    fn a_failing_driver_is_a_backend_error_and_the_saved_state_stays_muted() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::in_dir(dir.path());
        store
            .save(&Settings {
                muted: false,
                ..Settings::default()
            })
            .unwrap();
        let daemon = Daemon::start(store.clone(), |_| Ok(Box::new(StuckMuted))).unwrap();
        // The driver came up muted although the file said unmuted: the file follows the driver.
        assert!(store.load().0.muted);
        let (outbox, _rx) = sync_channel(8);
        let err = daemon
            .execute(
                1,
                Command::Unmute {
                    source: ChangeSource::Cli,
                },
                &outbox,
            )
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Backend);
        assert!(
            err.message.contains("driver unreachable"),
            "{}",
            err.message
        );
        assert!(daemon.state().muted);
        assert!(store.load().0.muted);
        let err = daemon.execute(2, Command::Listeners, &outbox).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Backend);
        let err = daemon
            .execute(
                3,
                Command::SelectDevice {
                    device: Some("x".into()),
                },
                &outbox,
            )
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::UnknownDevice);
        assert!(
            err.message.contains("no physical inputs"),
            "{}",
            err.message
        );
        daemon.shutdown();
        let err = daemon.execute(4, Command::Status, &outbox).unwrap_err();
        assert_eq!(err.kind, ErrorKind::ShuttingDown);
    }

    /// A backend that follows a device change it was told about asynchronously (as the macOS
    /// HAL listeners signal) only when polled.
    struct Following {
        polls: std::sync::Arc<std::sync::atomic::AtomicUsize>,
        device: Option<String>,
    }

    impl Backend for Following {
        fn name(&self) -> &'static str {
            "following"
        }
        fn start(&mut self, _initial_muted: bool) -> Result<(), BackendError> {
            Ok(())
        }
        fn set_hard_mute(&mut self, _: bool, _: ChangeSource) -> Result<(), BackendError> {
            Ok(())
        }
        fn hard_mute(&self) -> bool {
            true
        }
        fn status(&self) -> BackendStatus {
            BackendStatus {
                muted: true,
                generation: 0,
                source: ChangeSource::Startup,
                device: self.device.clone(),
                physical_open: self.device.is_some(),
                counters: Counters::default(),
            }
        }
        fn physical_inputs(&self) -> Result<Vec<InputDevice>, BackendError> {
            Ok(Vec::new())
        }
        fn select_input(&mut self, _: Option<&str>) -> Result<(), BackendError> {
            Ok(())
        }
        fn listeners(&self) -> Result<Vec<Listener>, BackendError> {
            Ok(Vec::new())
        }
        fn set_release_on_mute(&mut self, _: bool) -> Result<(), BackendError> {
            Ok(())
        }
        fn poll(&mut self) {
            self.polls.fetch_add(1, Ordering::SeqCst);
            self.device = Some("USB Mic".into());
        }
        fn stop(&mut self) {}
    }

    #[test]
    fn the_periodic_poll_lets_the_backend_follow_device_changes_without_touching_mute() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::in_dir(dir.path());
        let polls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let backend = Following {
            polls: polls.clone(),
            device: Some("Built-in".into()),
        };
        let daemon = Daemon::start(store, move |_| Ok(Box::new(backend))).unwrap();
        assert_eq!(daemon.state().device.as_deref(), Some("Built-in"));
        daemon.poll_changes();
        assert_eq!(polls.load(Ordering::SeqCst), 1);
        assert_eq!(daemon.state().device.as_deref(), Some("USB Mic"));
        assert!(daemon.state().muted);
        daemon.shutdown();
    }

    /// A driver whose daemon is killed right after the driver applied a change, before the daemon
    /// could do anything else (the panic stands for SIGKILL: nothing after it runs). It also
    /// records what the state file said at the instant of the apply.
    struct KilledAfterApply {
        driver_muted: std::sync::Arc<AtomicBool>,
        store: StateStore,
        file_at_apply: std::sync::Arc<parking_lot::Mutex<Vec<(bool, bool)>>>,
        started_with: std::sync::Arc<parking_lot::Mutex<Vec<bool>>>,
    }

    impl Backend for KilledAfterApply {
        fn name(&self) -> &'static str {
            "killed"
        }
        fn start(&mut self, initial_muted: bool) -> Result<(), BackendError> {
            self.driver_muted.store(initial_muted, Ordering::SeqCst);
            self.started_with.lock().push(initial_muted);
            Ok(())
        }
        fn set_hard_mute(&mut self, muted: bool, _: ChangeSource) -> Result<(), BackendError> {
            self.driver_muted.store(muted, Ordering::SeqCst);
            self.file_at_apply
                .lock()
                .push((muted, self.store.load().0.muted));
            panic!("hardmuted killed between \"applied\" and \"saved\"");
        }
        fn hard_mute(&self) -> bool {
            self.driver_muted.load(Ordering::SeqCst)
        }
        fn status(&self) -> BackendStatus {
            BackendStatus {
                muted: self.hard_mute(),
                generation: 0,
                source: ChangeSource::Startup,
                device: None,
                physical_open: false,
                counters: Counters::default(),
            }
        }
        fn physical_inputs(&self) -> Result<Vec<InputDevice>, BackendError> {
            Ok(Vec::new())
        }
        fn select_input(&mut self, _: Option<&str>) -> Result<(), BackendError> {
            Ok(())
        }
        fn listeners(&self) -> Result<Vec<Listener>, BackendError> {
            Ok(Vec::new())
        }
        fn set_release_on_mute(&mut self, _: bool) -> Result<(), BackendError> {
            Ok(())
        }
        fn stop(&mut self) {}
    }

    /// Fault injection: hardmuted dies between applying a change to the driver and saving it.
    /// A mute was saved first, so the restart (which applies the saved state, Restart=always)
    /// comes back muted; an interrupted unmute was not saved yet, so the restart is muted too.
    /// Either way the mic never comes back live by itself.
    #[test]
    fn killed_between_apply_and_save_never_restarts_live() {
        for (start_unmuted, command) in [
            (
                true,
                Command::Mute {
                    source: ChangeSource::Hotkey,
                },
            ),
            (
                true,
                Command::Toggle {
                    source: ChangeSource::Panel,
                },
            ),
            (
                false,
                Command::Unmute {
                    source: ChangeSource::Cli,
                },
            ),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let store = StateStore::in_dir(dir.path());
            store
                .save(&Settings {
                    muted: !start_unmuted,
                    ..Settings::default()
                })
                .unwrap();
            let file_at_apply = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
            let started_with = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
            let make = |store: &StateStore| KilledAfterApply {
                driver_muted: Default::default(),
                store: store.clone(),
                file_at_apply: file_at_apply.clone(),
                started_with: started_with.clone(),
            };
            let backend = make(&store);
            let daemon = Daemon::start(store.clone(), move |_| Ok(Box::new(backend))).unwrap();
            assert_eq!(daemon.state().muted, !start_unmuted);
            let (outbox, _rx) = sync_channel(8);
            let killed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                daemon.execute(1, command.clone(), &outbox)
            }));
            assert!(killed.is_err(), "{command:?}: the fault was injected");
            let (applied_muted, file_said_muted) = file_at_apply.lock()[0];
            assert!(
                file_said_muted,
                "{command:?}: the file says muted at the instant of the apply"
            );
            assert_eq!(applied_muted, start_unmuted, "{command:?}");
            // The restart applies the saved state.
            let backend = make(&store);
            let restarted = Daemon::start(store.clone(), move |_| Ok(Box::new(backend))).unwrap();
            assert_eq!(
                started_with.lock().last(),
                Some(&true),
                "{command:?}: restarted muted"
            );
            assert!(restarted.state().muted);
            file_at_apply.lock().clear();
        }
    }

    /// Another user's daemon on a shared driver: every unmute and the unmuted start are refused
    /// with NotOwner. This daemon stays up, muted, and its state says why.
    struct OwnedByAnotherUser(KilledAfterApply);

    impl Backend for OwnedByAnotherUser {
        fn name(&self) -> &'static str {
            "shared"
        }
        fn start(&mut self, initial_muted: bool) -> Result<(), BackendError> {
            if !initial_muted {
                return Err(BackendError::NotOwner(
                    "uid 501 owns the HardMute Microphone".into(),
                ));
            }
            self.0.start(true)
        }
        fn set_hard_mute(&mut self, muted: bool, _: ChangeSource) -> Result<(), BackendError> {
            if muted {
                self.0.driver_muted.store(true, Ordering::SeqCst);
                Ok(())
            } else {
                Err(BackendError::NotOwner(
                    "uid 501 owns the HardMute Microphone".into(),
                ))
            }
        }
        fn hard_mute(&self) -> bool {
            self.0.hard_mute()
        }
        fn status(&self) -> BackendStatus {
            self.0.status()
        }
        fn physical_inputs(&self) -> Result<Vec<InputDevice>, BackendError> {
            Ok(Vec::new())
        }
        fn select_input(&mut self, _: Option<&str>) -> Result<(), BackendError> {
            Ok(())
        }
        fn listeners(&self) -> Result<Vec<Listener>, BackendError> {
            Ok(Vec::new())
        }
        fn set_release_on_mute(&mut self, _: bool) -> Result<(), BackendError> {
            Ok(())
        }
        fn stop(&mut self) {}
    }

    #[test]
    fn a_backend_refused_the_device_at_a_muted_start_stays_up_and_says_why() {
        // As the Windows backend when the driver refuses the bridge: the start succeeds muted
        // and the backend reports why; it used to end the daemon.
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::in_dir(dir.path());
        store
            .save(&Settings {
                muted: false,
                ..Settings::default()
            })
            .unwrap();
        let why = "the HardMute Microphone belongs to another user of this PC";
        let daemon = Daemon::start(store, move |options| {
            Ok(Box::new(
                crate::backend::simulated::SimulatedBackend::with_owner(options, Some(why.into())),
            ))
        })
        .unwrap();
        let state = daemon.state();
        assert!(state.muted, "a second user's daemon serves muted");
        assert_eq!(state.not_owner.as_deref(), Some(why));
        let (outbox, _rx) = sync_channel(8);
        let unmute = Command::Unmute {
            source: ChangeSource::Cli,
        };
        let err = daemon.execute(1, unmute, &outbox).unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotOwner);
        assert!(daemon.state().muted);
        let mute = Command::Mute {
            source: ChangeSource::Cli,
        };
        assert!(
            daemon.execute(2, mute, &outbox).is_ok(),
            "adding mute is allowed"
        );
        let state = daemon.state();
        assert!(state.muted);
        assert_eq!(
            state.not_owner.as_deref(),
            Some(why),
            "still said after a mute"
        );
    }

    #[test]
    fn the_second_users_daemon_is_told_why_and_says_so_in_its_state() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::in_dir(dir.path());
        store
            .save(&Settings {
                muted: false,
                ..Settings::default()
            })
            .unwrap();
        let backend = OwnedByAnotherUser(KilledAfterApply {
            driver_muted: Default::default(),
            store: store.clone(),
            file_at_apply: Default::default(),
            started_with: Default::default(),
        });
        let daemon = Daemon::start(store, move |_| Ok(Box::new(backend))).unwrap();
        let state = daemon.state();
        assert!(state.muted);
        assert_eq!(
            state.not_owner.as_deref(),
            Some("uid 501 owns the HardMute Microphone")
        );
        let (outbox, _rx) = sync_channel(8);
        let err = daemon
            .execute(
                1,
                Command::Unmute {
                    source: ChangeSource::Cli,
                },
                &outbox,
            )
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotOwner);
        assert!(
            daemon
                .execute(
                    2,
                    Command::Mute {
                        source: ChangeSource::Cli
                    },
                    &outbox
                )
                .is_ok(),
            "adding mute is allowed"
        );
        assert!(daemon.state().not_owner.is_some());
    }

    /// An OS default input the test can look into and change (as a user would).
    struct SharedDefault(std::sync::Arc<Mutex<default_input::MemoryDefault>>, String);

    impl DefaultInputOs for SharedDefault {
        fn current(&mut self) -> Result<Option<String>, String> {
            self.0.lock().current()
        }
        fn set(&mut self, name: &str) -> Result<(), String> {
            self.0.lock().set(name)
        }
        fn hardmute_id(&self) -> &str {
            &self.1
        }
    }

    fn os_default(current: &str) -> std::sync::Arc<Mutex<default_input::MemoryDefault>> {
        std::sync::Arc::new(Mutex::new(default_input::MemoryDefault {
            current: Some(current.into()),
            hardmute: "hardmute_mic".into(),
            sets: Vec::new(),
            failing_sets: 0,
        }))
    }

    fn start_with(
        store: &StateStore,
        os: &std::sync::Arc<Mutex<default_input::MemoryDefault>>,
    ) -> Daemon {
        let os = os.clone();
        Daemon::start_with_default(
            store.clone(),
            |_| {
                Ok(Box::new(Following {
                    polls: Default::default(),
                    device: None,
                }))
            },
            move |_| Some(Box::new(SharedDefault(os, "hardmute_mic".into()))),
        )
        .unwrap()
    }

    #[test]
    fn default_input_is_claimed_once_reported_when_changed_reclaimed_and_restored() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::in_dir(dir.path());
        let os = os_default("alsa_mic");
        let (outbox, _rx) = sync_channel(8);

        // A fresh install claims the default; the mic it replaced feeds HardMute.
        let daemon = start_with(&store, &os);
        assert_eq!(os.lock().sets, ["hardmute_mic"]);
        let state = daemon.state();
        assert_eq!(state.default_input_protected, Some(true));
        assert_eq!(state.default_input.as_deref(), Some("hardmute_mic"));
        let saved = store.load().0;
        assert!(saved.default_input.claimed);
        assert_eq!(saved.default_input.previous.as_deref(), Some("alsa_mic"));
        assert_eq!(saved.device.as_deref(), Some("alsa_mic"));

        // The user picks another default: not fought, but reported.
        os.lock().current = Some("usb_mic".into());
        *daemon.default_read.lock() = None; // the refresh interval has passed
        daemon.poll_changes();
        let state = daemon.state();
        assert_eq!(state.default_input_protected, Some(false));
        assert_eq!(state.default_input.as_deref(), Some("usb_mic"));
        assert_eq!(
            os.lock().sets.len(),
            1,
            "hardmuted fought the user's choice"
        );
        daemon.shutdown();

        // A restart does not claim again.
        let daemon = start_with(&store, &os);
        assert_eq!(os.lock().sets.len(), 1);
        assert_eq!(daemon.state().default_input_protected, Some(false));

        // `protect`: HardMute is the default again, fed from the mic the user had picked.
        match daemon.execute(1, Command::ProtectDefault, &outbox).unwrap() {
            Some(Reply::State(s)) => {
                assert_eq!(s.default_input_protected, Some(true));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(store.load().0.device.as_deref(), Some("usb_mic"));
        assert_eq!(os.lock().current.as_deref(), Some("hardmute_mic"));
        assert_eq!(
            store.load().0.default_input.previous.as_deref(),
            Some("usb_mic")
        );

        // Uninstall gives it back and forgets the claim; this run does not take it again.
        daemon.execute(2, Command::RestoreDefault, &outbox).unwrap();
        assert_eq!(os.lock().current.as_deref(), Some("usb_mic"));
        *daemon.default_read.lock() = None;
        daemon.poll_changes();
        assert_eq!(
            os.lock().current.as_deref(),
            Some("usb_mic"),
            "re-claimed after uninstall"
        );
        assert_eq!(
            store.load().0.default_input,
            default_input::Remembered::default()
        );
        assert_eq!(daemon.state().default_input_protected, Some(false));
        daemon.shutdown();
    }

    #[test]
    fn a_claim_that_failed_at_start_is_retried_by_the_poll() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::in_dir(dir.path());
        let os = os_default("alsa_mic");
        os.lock().failing_sets = 1;
        let daemon = start_with(&store, &os);
        assert!(os.lock().sets.is_empty());
        assert_eq!(daemon.state().default_input_protected, Some(false));
        assert!(
            !store.load().0.default_input.claimed,
            "a failed claim is not remembered"
        );
        *daemon.default_read.lock() = None;
        daemon.poll_changes();
        assert_eq!(os.lock().sets, ["hardmute_mic"]);
        assert_eq!(daemon.state().default_input_protected, Some(true));
        let saved = store.load().0;
        assert!(saved.default_input.claimed);
        assert_eq!(saved.default_input.previous.as_deref(), Some("alsa_mic"));
        daemon.shutdown();
    }

    #[test]
    fn a_backend_without_an_os_default_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let daemon = Daemon::start_with_default(
            StateStore::in_dir(dir.path()),
            |_| Ok(Box::new(StuckMuted)),
            |_| None,
        )
        .unwrap();
        assert_eq!(daemon.state().default_input_protected, None);
        let (outbox, _rx) = sync_channel(8);
        let err = daemon
            .execute(1, Command::ProtectDefault, &outbox)
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Backend);
        daemon.shutdown();
    }

    #[test]
    fn a_backend_without_a_daemon_held_guard_refuses_the_option_and_nothing_is_saved() {
        // As the Linux backend, whose guard is configuration files: the option is refused with
        // a clear error, the state reports no guard, and the setting is not stored as on.
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::in_dir(dir.path());
        let daemon = Daemon::start(store.clone(), |_| Ok(Box::new(StuckMuted))).unwrap();
        assert_eq!(daemon.state().guard, None);
        let (outbox, _rx) = sync_channel(8);
        let err = daemon
            .execute(
                1,
                Command::SetOption {
                    option: DaemonOption::Guard(true),
                },
                &outbox,
            )
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Refused);
        assert!(err.message.contains("no guard"), "{}", err.message);
        assert!(!store.load().0.guard);
        assert_eq!(daemon.state().guard, None);
        daemon.shutdown();
    }
}
