//! `WindowsBackend`: the control device on the caller's thread, and a controller thread that
//! owns the COM objects (device watcher, capture stream) and the bridge registration, and
//! re-plans the capture on every event (mute change, device change, selection, capture end)
//! and on a 250 ms poll of the driver (its stream rate; whether someone else muted; whether it
//! still holds the bridge; whether its bridge heartbeat moves while an app records: a capture
//! that went silent without an error is reopened, see `policy::BridgeWatch`).

use super::control_device::{BridgeRegistration, ControlDevice};
use super::feed::{CaptureFeed, FeedStats};
use super::policy::{self, Action, BridgeHealth, BridgeWatch, Plan, PlanInputs};
use crate::capture::{CaptureStream, Packet};
use crate::notify::DeviceWatcher;
use crate::{devices, sessions, ComApartment, DeviceEvent, EndpointInfo};
use hardmute_backend::captured_level::CapturedLevel;
use hardmute_backend::{
    Backend, BackendError, BackendOptions, BackendStatus, GuardState, LevelReading,
};
use hardmute_core::bridge::HostClock;
use hardmute_core::level::LevelTap;
use hardmute_ipc::{ChangeSource, Counters, InputDevice, Listener};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(250);
/// After a failed open/registration, wait this long before trying again.
const RETRY: Duration = Duration::from_secs(2);

enum Command {
    Replan,
    Device(DeviceEvent),
    Select(Option<String>),
    ReleaseOnMute(bool),
    Guard(bool),
    CaptureEnded {
        endpoint_id: String,
        error: Option<String>,
    },
    Stop,
}

/// What the controller publishes for `status` (off the realtime path).
#[derive(Default)]
struct LinkState {
    open: Option<(String, String)>,
    /// How the open capture holds the physical mic (for the guard).
    sharing: Option<policy::Sharing>,
    fallback: bool,
    bridge_registered: bool,
    last_problem: Option<String>,
    /// Set while the driver refuses this user's bridge because another user owns the HardMute
    /// Microphone (the daemon stays up muted and reports it; see `policy::after_registration`).
    not_owner: Option<String>,
}

struct Shared {
    link: Mutex<LinkState>,
    stats: Arc<FeedStats>,
    device_rate: Arc<AtomicU32>,
    /// The captured input's level, metered in the capture callback (one tap for every capture
    /// stream the controller opens).
    level: Arc<LevelTap>,
}

struct Controller {
    tx: mpsc::Sender<Command>,
    thread: JoinHandle<()>,
}

pub struct WindowsBackend {
    options: BackendOptions,
    device: Option<Arc<ControlDevice>>,
    controller: Option<Controller>,
    shared: Arc<Shared>,
    captured_level: CapturedLevel,
}

impl WindowsBackend {
    pub fn new(options: BackendOptions) -> Self {
        WindowsBackend {
            options,
            device: None,
            controller: None,
            shared: Arc::new(Shared {
                link: Mutex::new(LinkState::default()),
                stats: Arc::new(FeedStats::default()),
                device_rate: Arc::new(AtomicU32::new(0)),
                level: Arc::new(LevelTap::new()),
            }),
            captured_level: CapturedLevel::default(),
        }
    }

    fn device(&self) -> Result<&Arc<ControlDevice>, BackendError> {
        self.device.as_ref().ok_or(BackendError::NotRunning)
    }

    fn send(&self, command: Command) {
        if let Some(c) = &self.controller {
            let _ = c.tx.send(command);
        }
    }
}

fn com() -> Result<ComApartment, BackendError> {
    ComApartment::multithreaded().map_err(|e| BackendError::Failed(e.to_string()))
}

fn endpoints() -> Result<Vec<EndpointInfo>, BackendError> {
    let _com = com()?;
    devices::capture_endpoints().map_err(|e| BackendError::Failed(e.to_string()))
}

impl Backend for WindowsBackend {
    fn name(&self) -> &'static str {
        "windows"
    }

    fn start(&mut self, initial_muted: bool) -> Result<(), BackendError> {
        if self.controller.is_some() {
            return Ok(());
        }
        let device = Arc::new(ControlDevice::open()?);
        if initial_muted {
            // Adding mute is allowed to anyone, before the bridge exists.
            device.set_mute(true, hardmute_core::ChangeSource::Daemon)?;
        }
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let (tx, rx) = mpsc::channel();
        let ctx = ControllerContext {
            device: device.clone(),
            shared: self.shared.clone(),
            tx: tx.clone(),
            selection: self.options.device.clone(),
            release_on_mute: self.options.release_on_mute,
            guard: self.options.guard,
        };
        let thread = thread::Builder::new()
            .name("hardmute-bridge-ctl".into())
            .spawn(move || ctx.run(rx, ready_tx))
            .map_err(|e| BackendError::Failed(format!("cannot start the bridge thread: {e}")))?;
        self.controller = Some(Controller { tx, thread });
        self.device = Some(device.clone());
        let ready = ready_rx
            .recv()
            .unwrap_or_else(|_| Err(BackendError::Failed("the bridge thread died".into())));
        // The bridge registration made this user the owner: only now may it unmute. A user who
        // is not the owner stays up muted (the controller runs without a bridge).
        let not_owner = self.shared.link.lock().not_owner.clone();
        let result = ready.and_then(|()| {
            if initial_muted || not_owner.is_some() {
                Ok(())
            } else {
                device
                    .set_mute(false, hardmute_core::ChangeSource::Daemon)
                    .map(drop)
            }
        });
        if let Err(e) = result {
            self.stop();
            return Err(e);
        }
        // Open the mic now rather than at the first poll.
        self.send(Command::Replan);
        policy::start_result(initial_muted, not_owner.as_deref())
    }

    fn set_hard_mute(&mut self, muted: bool, source: ChangeSource) -> Result<(), BackendError> {
        let result = self
            .device()?
            .set_mute(muted, policy::ioctl_source(source))
            .map(drop);
        // Release-on-mute and the status follow at once, whatever the outcome.
        self.send(Command::Replan);
        result
    }

    fn hard_mute(&self) -> bool {
        // No driver, or no answer: report muted (the driver's own default), never unmuted.
        self.device
            .as_ref()
            .and_then(|d| d.get_state().ok())
            .is_none_or(|s| s.hard_mute != 0)
    }

    fn status(&self) -> BackendStatus {
        let state = self.device.as_ref().and_then(|d| d.get_state().ok());
        let link = self.shared.link.lock();
        let bridge_overruns = self.shared.stats.overruns.load(Relaxed);
        BackendStatus {
            muted: state.is_none_or(|s| s.hard_mute != 0),
            generation: state.map_or(0, |s| s.generation),
            source: state.map_or(ChangeSource::Startup, |s| {
                policy::reply_source(s.last_source)
            }),
            device: self.options.device.clone(),
            physical_open: link.open.is_some(),
            counters: state
                .map_or_else(Counters::default, |s| policy::counters(&s, bridge_overruns)),
        }
    }

    fn physical_inputs(&self) -> Result<Vec<InputDevice>, BackendError> {
        Ok(policy::input_devices(&endpoints()?))
    }

    fn select_input(&mut self, name: Option<&str>) -> Result<(), BackendError> {
        if let Some(name) = name {
            // Validate here so an unknown name is a typed error listing the inputs.
            policy::choose_input(&endpoints()?, Some(name))?;
        }
        if self.controller.is_none() {
            return Err(BackendError::NotRunning);
        }
        self.options.device = name.map(str::to_owned);
        self.send(Command::Select(self.options.device.clone()));
        Ok(())
    }

    fn listeners(&self) -> Result<Vec<Listener>, BackendError> {
        let _com = com()?;
        let found =
            sessions::capture_sessions().map_err(|e| BackendError::Failed(e.to_string()))?;
        let own = std::process::id();
        let listeners = policy::listeners(&found, own);
        for l in policy::direct_physical_users(&listeners, own) {
            log::warn!(
                "{} (pid {:?}) captures a physical microphone directly; HardMute cannot mute it",
                l.app,
                l.pid
            );
        }
        Ok(listeners)
    }

    fn set_release_on_mute(&mut self, release: bool) -> Result<(), BackendError> {
        if self.controller.is_none() {
            return Err(BackendError::NotRunning);
        }
        self.options.release_on_mute = release;
        self.send(Command::ReleaseOnMute(release));
        Ok(())
    }

    /// The controller reopens the capture in exclusive mode (or back in shared mode); whether
    /// exclusive mode was granted shows in [`Backend::guard`] once it has.
    fn set_guard(&mut self, on: bool) -> Result<(), BackendError> {
        if self.controller.is_none() {
            return Err(BackendError::NotRunning);
        }
        self.options.guard = on;
        self.send(Command::Guard(on));
        Ok(())
    }

    fn guard(&self) -> Option<GuardState> {
        let link = self.shared.link.lock();
        Some(policy::guard_state(
            self.options.guard,
            link.sharing.as_ref(),
        ))
    }

    /// The gate runs in the kernel driver, so nothing the daemon can reach meters what apps
    /// get; the capture callback meters the physical mic instead, which is the room even while
    /// muted. So the reading counts only while the driver reports live with one generation
    /// before and after it is read (no driver or no answer = muted): zeros otherwise.
    fn not_owner(&self) -> Option<String> {
        self.shared.link.lock().not_owner.clone()
    }

    fn level(&self) -> Option<LevelReading> {
        let device = self.device.as_ref()?;
        let live = || {
            device
                .get_state()
                .ok()
                .filter(|s| s.hard_mute == 0)
                .map(|s| s.generation)
        };
        let before = live();
        let captured = self.shared.level.read();
        let after = live();
        Some(self.captured_level.reading(before, captured, after))
    }

    fn stop(&mut self) {
        if let Some(device) = &self.device {
            // Fail closed: mute before the bridge goes away.
            let _ = device.set_mute(true, hardmute_core::ChangeSource::Daemon);
        }
        if let Some(c) = self.controller.take() {
            let _ = c.tx.send(Command::Stop);
            let _ = c.thread.join();
        }
        self.device = None;
    }
}

impl Drop for WindowsBackend {
    fn drop(&mut self) {
        self.stop();
    }
}

struct ControllerContext {
    device: Arc<ControlDevice>,
    shared: Arc<Shared>,
    tx: mpsc::Sender<Command>,
    selection: Option<String>,
    release_on_mute: bool,
    guard: bool,
}

struct Running {
    registration: Option<Arc<BridgeRegistration>>,
    capture: Option<CaptureStream>,
    endpoints: Vec<EndpointInfo>,
    muted: bool,
    /// An app records the HardMute Microphone (the driver's stream is in RUN).
    app_recording: bool,
    last_failure: Option<Instant>,
    /// The driver's bridge heartbeat across polls, against `started`.
    watch: BridgeWatch,
    started: Instant,
}

impl ControllerContext {
    fn run(
        mut self,
        rx: mpsc::Receiver<Command>,
        ready: mpsc::SyncSender<Result<(), BackendError>>,
    ) {
        let _com = match com() {
            Ok(com) => com,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let first = BridgeRegistration::register(self.device.clone());
        let (registration, outcome) = match first {
            Ok(r) => (Some(Arc::new(r)), policy::after_registration(Ok(()))),
            Err(e) => (None, policy::after_registration(Err(e))),
        };
        let mut last_failure = None;
        match outcome {
            policy::AfterRegistration::Feed => {}
            policy::AfterRegistration::StayUpMuted { why } => {
                log::warn!("{why}; staying up muted (mute allowed, unmute refused by the driver)");
                let mut link = self.shared.link.lock();
                link.last_problem = Some(why.clone());
                link.not_owner = Some(why);
                last_failure = Some(Instant::now());
            }
            policy::AfterRegistration::Fail(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        }
        let watch_tx = self.tx.clone();
        let _watcher = DeviceWatcher::register(move |event| {
            let _ = watch_tx.send(Command::Device(event));
        })
        .map_err(|e| log::warn!("not following device changes: {e}"))
        .ok();
        let mut st = Running {
            registration,
            capture: None,
            endpoints: devices::capture_endpoints().unwrap_or_else(|e| {
                log::warn!("cannot list capture endpoints: {e}");
                Vec::new()
            }),
            muted: true,
            app_recording: false,
            last_failure,
            watch: BridgeWatch::default(),
            started: Instant::now(),
        };
        let _ = ready.send(Ok(()));
        loop {
            match rx.recv_timeout(POLL) {
                Ok(Command::Stop) | Err(RecvTimeoutError::Disconnected) => break,
                Ok(Command::Replan) | Err(RecvTimeoutError::Timeout) => {}
                Ok(Command::Device(event)) => {
                    log::info!("audio endpoints changed: {event:?}");
                    match devices::capture_endpoints() {
                        Ok(list) => st.endpoints = list,
                        Err(e) => log::warn!("cannot list capture endpoints: {e}"),
                    }
                    st.last_failure = None;
                }
                Ok(Command::Select(selection)) => {
                    self.selection = selection;
                    st.last_failure = None;
                }
                Ok(Command::ReleaseOnMute(release)) => self.release_on_mute = release,
                Ok(Command::Guard(on)) => {
                    self.guard = on;
                    st.last_failure = None;
                }
                Ok(Command::CaptureEnded { endpoint_id, error }) => {
                    let ours = st
                        .capture
                        .as_ref()
                        .is_some_and(|c| c.endpoint_id() == endpoint_id);
                    if let (true, Some(error)) = (ours, error) {
                        log::warn!("capture of {endpoint_id} ended: {error}");
                        st.capture = None;
                        st.last_failure = Some(Instant::now());
                        self.shared.link.lock().last_problem = Some(error);
                    }
                }
            }
            self.step(&mut st);
        }
        // Stop writing before the ring goes away; the registration's drop cancels the request
        // and waits for the driver before freeing the memory.
        st.capture = None;
        st.registration = None;
        let mut link = self.shared.link.lock();
        let not_owner = link.not_owner.take();
        *link = LinkState {
            not_owner,
            ..LinkState::default()
        };
    }

    fn may_retry(st: &Running) -> bool {
        st.last_failure.is_none_or(|t| t.elapsed() >= RETRY)
    }

    /// Polls the driver, then brings the capture in line with the plan.
    fn step(&self, st: &mut Running) {
        match self.device.get_state() {
            Ok(state) => {
                st.muted = state.hard_mute != 0;
                st.app_recording = state.stream_running != 0;
                self.shared.device_rate.store(state.stream_rate, Relaxed);
                let health = st.watch.observe(
                    state.bridge_heartbeat,
                    state.stream_running != 0,
                    st.capture.is_some(),
                    st.started.elapsed(),
                );
                if let BridgeHealth::Stale(flat) = health {
                    // The capture stream is open but the driver gets nothing from it (a
                    // wedged endpoint, a stalled thread): apps hear zeros. Reopen it.
                    let problem = format!(
                        "the driver got no bridge audio for {} ms while an app records; reopening the capture",
                        flat.as_millis()
                    );
                    log::warn!("{problem}");
                    self.shared.link.lock().last_problem = Some(problem);
                    st.capture = None;
                    st.last_failure = Some(Instant::now());
                    st.watch.restart();
                }
            }
            // No answer: treat as muted (release-on-mute then closes the mic).
            Err(_) => st.muted = true,
        }
        if st.registration.as_ref().is_some_and(|r| !r.is_pending()) {
            log::warn!("the driver dropped the bridge ring; registering again");
            st.capture = None;
            st.registration = None;
        }
        if st.registration.is_none() && Self::may_retry(st) {
            match BridgeRegistration::register(self.device.clone()) {
                Ok(r) => {
                    st.registration = Some(Arc::new(r));
                    let mut link = self.shared.link.lock();
                    if link.not_owner.take().is_some() {
                        log::info!("the driver accepted this user's bridge: no longer refused");
                    }
                }
                Err(e) => {
                    st.last_failure = Some(Instant::now());
                    let mut link = self.shared.link.lock();
                    link.not_owner = match &e {
                        BackendError::NotOwner(why) => Some(why.clone()),
                        _ => None,
                    };
                    link.last_problem = Some(e.to_string());
                }
            }
        }
        let plan = policy::plan(PlanInputs {
            endpoints: &st.endpoints,
            selection: self.selection.as_deref(),
            muted: st.muted,
            release_on_mute: self.release_on_mute,
            bridge_registered: st.registration.is_some(),
            app_recording: st.app_recording,
            guard: self.guard,
        });
        if st
            .capture
            .as_ref()
            .is_some_and(|c| policy::reopen_for_guard(c.asked_exclusive(), self.guard))
        {
            // The guard was switched: reopen in the other share mode (the plan opens it again).
            log::info!(
                "guard {}: reopening the physical mic",
                if self.guard { "on" } else { "off" }
            );
            st.capture = None;
        }
        match policy::reconcile(st.capture.as_ref().map(|c| c.endpoint_id()), &plan) {
            Action::Keep => {}
            Action::Close => {
                log::info!("closing the physical mic ({plan:?})");
                st.capture = None;
            }
            Action::Open(id) => {
                st.capture = None;
                if let (true, Some(reg)) = (Self::may_retry(st), st.registration.clone()) {
                    match self.open_capture(&id, reg) {
                        Ok(c) => {
                            log::info!("capturing {id} ({:?}, {:?})", c.format(), c.sharing());
                            st.capture = Some(c);
                        }
                        Err(e) => {
                            log::warn!("cannot capture {id}: {e}");
                            st.last_failure = Some(Instant::now());
                            self.shared.link.lock().last_problem = Some(e);
                        }
                    }
                }
            }
        }
        let mut link = self.shared.link.lock();
        link.bridge_registered = st.registration.is_some();
        link.open = match (&plan, &st.capture) {
            (
                Plan::Open {
                    endpoint_id, name, ..
                },
                Some(_),
            ) => Some((endpoint_id.clone(), name.clone())),
            _ => None,
        };
        link.fallback = matches!(plan, Plan::Open { fallback: true, .. });
        link.sharing = link
            .open
            .as_ref()
            .and(st.capture.as_ref())
            .map(|c| c.sharing().clone());
    }

    fn open_capture(
        &self,
        id: &str,
        reg: Arc<BridgeRegistration>,
    ) -> Result<CaptureStream, String> {
        let stats = self.shared.stats.clone();
        let rate = self.shared.device_rate.clone();
        let level = self.shared.level.clone();
        let tx = self.tx.clone();
        let ended_id = id.to_owned();
        CaptureStream::start(
            id,
            self.guard,
            move |format| {
                // Set up on the capture thread before the first packet (may allocate).
                let mut feed =
                    CaptureFeed::with_level_tap(format, rate.load(Relaxed), level.clone());
                move |packet: Packet<'_>| {
                    // Realtime: atomics, the ring and the feed only.
                    if let Some(ring) = reg.ring() {
                        let mut writer = ring.writer();
                        let clock = HostClock {
                            now: packet.qpc_now,
                            ticks_per_second: packet.qpc_frequency,
                        };
                        feed.on_packet(
                            packet.samples,
                            &mut writer,
                            clock,
                            rate.load(Relaxed),
                            &stats,
                        );
                    }
                }
            },
            move |result| {
                let _ = tx.send(Command::CaptureEnded {
                    endpoint_id: ended_id,
                    error: result.err().map(|e| e.to_string()),
                });
            },
        )
        .map_err(|e| e.to_string())
    }
}
