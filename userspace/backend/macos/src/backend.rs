//! The macOS backend: the HardMute AudioServerPlugIn (`driver/macos`) holds the hard-mute state
//! inside coreaudiod and gates delivery; this backend is its client through this crate's
//! bridge:
//!
//! - `'hmut'` on the HardMute Microphone ([`HardMute`]): anyone may set it, only this daemon
//!   (bundle id `org.hardmute.daemon`, while it is a client of one of the plug-in's devices) may
//!   clear it; a set returns once the plug-in's IO thread sees the new state.
//! - [`Bridge`]: physical mic -> hidden "HardMute Feed" device, drift-corrected.
//! - Listeners from the HAL's process list (macOS 14+).
//! - [`DeviceWatcher`]: HAL property listeners (default input, device list, the captured device's
//!   liveness) that only set bits; [`Backend::poll`] takes them every poll interval and applies
//!   [`backend_policy::react`].
//!
//! The decisions live in the bridge's [`policy`] and in [`backend_policy`], both tested
//! on Linux; this file only gathers their inputs and applies their answers. It is type-checked for
//! the Apple targets on Linux (`cargo xtask cross-check crates`) and runs only on a Mac.

use crate::backend_policy;
use crate::macos::{self as hal, Bridge, DeviceWatcher, HardMute};
use crate::policy;
use hardmute_backend::captured_level::CapturedLevel;
use hardmute_backend::{
    Backend, BackendError, BackendOptions, BackendStatus, GuardState, LevelReading,
};
use hardmute_ipc::{ChangeSource, Counters, InputDevice, Listener};

/// `kAudioDevicePermissionsError` ('!hog'): the plug-in refuses an unmute or the feed to anyone
/// but the owning user's daemon.
const PERMISSIONS_ERROR: i32 = 0x2168_6F67;

fn failed(what: &str, e: hal::Error) -> BackendError {
    if let hal::Error::Status(PERMISSIONS_ERROR) = e {
        return BackendError::NotOwner(format!(
            "{what}: the HardMute Microphone belongs to another user of this Mac (the uid recorded \
             at install); this user's hardmuted may mute it, not unmute or feed it"
        ));
    }
    BackendError::Failed(match e {
        hal::Error::NoDevice(device) => format!(
            "{what}: the {device} device is missing (HardMute.driver not installed, or coreaudiod \
             not restarted since)"
        ),
        other => format!("{what}: {other:?}"),
    })
}

/// Whether an app records the HardMute Microphone now (`None`: the HAL did not say).
fn app_recording(devices: &HardMute) -> Option<bool> {
    devices
        .is_running_somewhere()
        .map_err(|e| log::debug!("reading 'running somewhere': {e:?}"))
        .ok()
}

struct Running {
    devices: HardMute,
    /// `None` when no physical input is available (the plug-in then delivers zeros).
    bridge: Option<Bridge>,
    /// Capture stopped by release-on-mute (the feed keeps running, so we stay a client).
    capture_paused: bool,
    /// The device being captured (HAL id, UID).
    capturing: Option<(u32, String)>,
    /// `None` if the HAL refused the listeners: then the bridge follows nothing (logged).
    watcher: Option<DeviceWatcher>,
    /// The guard's hog mode on the captured device.
    hog: backend_policy::Hog,
}

fn own_pid() -> i32 {
    i32::try_from(std::process::id()).unwrap_or(-1)
}

/// The HAL's hog-mode property, for [`backend_policy::apply_hog`].
struct HalHog;

impl backend_policy::HogHal for HalHog {
    fn owner(&self, device: u32) -> Result<i32, String> {
        hal::hog_mode_owner(device).map_err(|e| format!("{e:?}"))
    }
    fn toggle(&self, device: u32) -> Result<i32, String> {
        hal::toggle_hog_mode(device).map_err(|e| format!("{e:?}"))
    }
}

impl Running {
    /// The physical device whose capture runs now (`None`: no bridge, or the mic is closed).
    fn open_on(&self) -> Option<u32> {
        self.capturing
            .as_ref()
            .filter(|_| self.bridge.is_some() && !self.capture_paused)
            .map(|(id, _)| *id)
    }

    /// Hog mode as [`backend_policy::apply_hog`] says for the guard and the open mic.
    fn apply_guard(&mut self, guard: bool) {
        let open_on = self.open_on();
        let capturing = &self.capturing;
        let name = |id: u32| match capturing {
            Some((captured, uid)) if *captured == id => uid.clone(),
            _ => format!("device {id}"),
        };
        backend_policy::apply_hog(&HalHog, guard, open_on, own_pid(), name, &mut self.hog);
    }
}

pub struct MacosBackend {
    options: BackendOptions,
    running: Option<Running>,
    /// The plug-in keeps only the flag; the daemon numbers and attributes its own changes.
    generation: u64,
    source: ChangeSource,
    captured_level: CapturedLevel,
}

impl MacosBackend {
    pub fn new(options: BackendOptions) -> Self {
        MacosBackend {
            options,
            running: None,
            generation: 0,
            source: ChangeSource::Startup,
            captured_level: CapturedLevel::default(),
        }
    }

    fn running(&self) -> Result<&Running, BackendError> {
        self.running.as_ref().ok_or(BackendError::NotRunning)
    }

    /// (Re)starts the bridge on `target` (`None` = none left: no bridge, zeros). With `open`
    /// false the physical mic stays closed (release-on-mute while muted); the feed runs.
    fn start_bridge(
        running: &mut Running,
        target: Option<&policy::InputDevice>,
        open: bool,
    ) -> Result<(), BackendError> {
        // The old capture goes first: one physical capture at a time.
        running.bridge = None;
        running.capturing = None;
        running.capture_paused = false;
        let watched = target.map(|d| d.id);
        if let Some(watcher) = running.watcher.as_mut() {
            if let Err(e) = watcher.watch_captured(watched) {
                log::warn!("not watching the captured device for removal: {e:?}");
            }
        }
        let Some(device) = target else {
            log::warn!("no physical input: HardMute Microphone delivers silence");
            return Ok(());
        };
        let bridge = Bridge::start(device.id, &running.devices, open)
            .map_err(|e| failed(&format!("capturing {:?}", device.name), e))?;
        log::info!(
            "bridging {:?} ({}) into HardMute{}",
            device.name,
            device.uid,
            if open {
                ""
            } else {
                " (mic closed while muted)"
            }
        );
        running.bridge = Some(bridge);
        running.capturing = Some((device.id, device.uid.clone()));
        running.capture_paused = !open;
        Ok(())
    }

    /// On-demand capture and release-on-mute: open or close the physical mic as
    /// [`backend_policy::capture_action`] says, from whether an app records the HardMute
    /// Microphone now (the plug-in's "running somewhere") and the mute.
    fn apply_capture_policy(&mut self, muted: bool) -> Result<(), BackendError> {
        let guard = self.options.guard;
        let result = self.apply_capture_policy_only(muted);
        if let Some(running) = self.running.as_mut() {
            // Hog mode follows the mic: held while it is open and the guard is on.
            running.apply_guard(guard);
        }
        result
    }

    fn apply_capture_policy_only(&mut self, muted: bool) -> Result<(), BackendError> {
        let running = self.running.as_mut().ok_or(BackendError::NotRunning)?;
        let (release, recording) = backend_policy::capture_inputs(
            self.options.guard,
            self.options.release_on_mute,
            app_recording(&running.devices).unwrap_or(true),
        );
        let Some(bridge) = running.bridge.as_mut() else {
            return Ok(());
        };
        match backend_policy::capture_action(
            !running.capture_paused,
            muted,
            release,
            Some(recording),
        ) {
            backend_policy::CaptureAction::Keep => {}
            backend_policy::CaptureAction::Open => {
                bridge
                    .resume_capture()
                    .map_err(|e| failed("reopening the physical mic", e))?;
                running.capture_paused = false;
            }
            backend_policy::CaptureAction::Close => {
                bridge
                    .pause_capture()
                    .map_err(|e| failed("releasing the physical mic", e))?;
                running.capture_paused = true;
            }
        }
        Ok(())
    }

    fn record_change(&mut self, source: ChangeSource) {
        self.generation += 1;
        self.source = source;
    }
}

impl Backend for MacosBackend {
    fn name(&self) -> &'static str {
        "macos"
    }

    fn start(&mut self, initial_muted: bool) -> Result<(), BackendError> {
        if self.running.is_some() {
            return Ok(());
        }
        let devices = HardMute::find().map_err(|e| failed("finding HardMute", e))?;
        // Mute before any capture starts (anyone may mute). An unmute is accepted only from a
        // client of the plug-in's devices, so it waits until the bridge's IOProc on the feed runs.
        devices
            .set_muted(true)
            .map_err(|e| failed("muting HardMute", e))?;
        // Listen before reading the device list, so no change between the two is missed.
        let mut watcher = DeviceWatcher::start()
            .map_err(|e| log::warn!("not following default-input changes or hot-plug: {e:?}"))
            .ok();
        if let Some(w) = watcher.as_mut() {
            if let Err(e) = w.watch_mic_running(devices.mic) {
                // Then the mic opens on a mute/unmute or device change only (logged).
                log::warn!("not following apps starting HardMute: {e:?}");
            }
        }
        let mut running = Running {
            devices,
            bridge: None,
            capture_paused: false,
            capturing: None,
            watcher,
            hog: backend_policy::Hog::default(),
        };
        let inputs = hal::input_devices().map_err(|e| failed("listing inputs", e))?;
        let target = backend_policy::capture_target(&inputs, self.options.device.as_deref());
        let (release, recording) = backend_policy::capture_inputs(
            self.options.guard,
            self.options.release_on_mute,
            app_recording(&running.devices).unwrap_or(true),
        );
        let open = policy::should_capture(true, release, recording);
        if let Err(e) = Self::start_bridge(&mut running, target, open) {
            // The virtual mic is muted and delivers zeros; report it, keep serving.
            log::warn!("{e}");
        }
        self.running = Some(running);
        self.record_change(ChangeSource::Startup);
        if !initial_muted {
            if let Err(e) = self.set_hard_mute(false, ChangeSource::Startup) {
                // Refused or failed: stay muted and keep serving (the daemon reads the state
                // back with `hard_mute`); the user can retry the unmute.
                log::warn!("starting muted: {e}");
            } else {
                return Ok(());
            }
        }
        if let Err(e) = self.apply_capture_policy(true) {
            log::warn!("{e}");
        }
        Ok(())
    }

    fn set_hard_mute(&mut self, muted: bool, source: ChangeSource) -> Result<(), BackendError> {
        let running = self.running()?;
        // Returns after the plug-in has made the change effective on its IO thread. A refused
        // unmute leaves the plug-in muted.
        running.devices.set_muted(muted).map_err(|e| {
            failed(
                if muted {
                    "muting HardMute"
                } else {
                    "unmuting HardMute"
                },
                e,
            )
        })?;
        self.record_change(source);
        if let Err(e) = self.apply_capture_policy(muted) {
            // The mute state is set; only the mic indicator is affected.
            log::warn!("{e}");
        }
        Ok(())
    }

    fn hard_mute(&self) -> bool {
        // Not started or unreadable: report muted (fail closed).
        self.running
            .as_ref()
            .is_none_or(|r| r.devices.is_muted().unwrap_or(true))
    }

    fn status(&self) -> BackendStatus {
        let running = self.running.as_ref();
        BackendStatus {
            muted: self.hard_mute(),
            generation: self.generation,
            source: self.source,
            device: running
                .and_then(|r| r.capturing.as_ref().map(|(_, uid)| uid.clone()))
                .or_else(|| self.options.device.clone()),
            physical_open: running.is_some_and(|r| r.bridge.is_some() && !r.capture_paused),
            // The plug-in's counters stay inside coreaudiod ('hmut' carries only the flag).
            counters: Counters::default(),
        }
    }

    fn physical_inputs(&self) -> Result<Vec<InputDevice>, BackendError> {
        self.running()?;
        let inputs = hal::input_devices().map_err(|e| failed("listing inputs", e))?;
        Ok(backend_policy::physical_inputs(&inputs))
    }

    fn select_input(&mut self, name: Option<&str>) -> Result<(), BackendError> {
        self.running()?;
        let inputs = hal::input_devices().map_err(|e| failed("listing inputs", e))?;
        let target = backend_policy::resolve_selection(&inputs, name)?;
        let muted = self.hard_mute();
        let running = self.running.as_mut().ok_or(BackendError::NotRunning)?;
        let already = running.bridge.is_some()
            && running.capturing.as_ref().map(|(_, uid)| uid.as_str())
                == target.map(|d| d.uid.as_str());
        if !already {
            // The mute state lives in the plug-in and is untouched by the switch.
            let (release, recording) = backend_policy::capture_inputs(
                self.options.guard,
                self.options.release_on_mute,
                app_recording(&running.devices).unwrap_or(true),
            );
            let open = policy::should_capture(muted, release, recording);
            Self::start_bridge(running, target, open)?;
        }
        self.options.device = name.map(str::to_owned);
        self.apply_capture_policy(muted)
    }

    fn listeners(&self) -> Result<Vec<Listener>, BackendError> {
        self.running()?;
        let processes = hal::input_processes().map_err(|e| {
            failed(
                "listing listeners (the HAL process list needs macOS 14 or later)",
                e,
            )
        })?;
        Ok(backend_policy::listeners(&processes, own_pid()))
    }

    fn set_release_on_mute(&mut self, release: bool) -> Result<(), BackendError> {
        self.running()?;
        self.options.release_on_mute = release;
        let muted = self.hard_mute();
        self.apply_capture_policy(muted)
    }

    /// Hog mode on the captured device while on (the mic is then held open); a refusal is
    /// reported by [`Backend::guard`], and switching the guard is what tries again.
    fn set_guard(&mut self, on: bool) -> Result<(), BackendError> {
        let running = self.running.as_mut().ok_or(BackendError::NotRunning)?;
        running.hog.refused = None;
        self.options.guard = on;
        let muted = self.hard_mute();
        self.apply_capture_policy(muted)
    }

    fn guard(&self) -> Option<GuardState> {
        let (open_on, hog) = match &self.running {
            Some(r) => (r.open_on(), r.hog.clone()),
            None => (None, backend_policy::Hog::default()),
        };
        Some(backend_policy::guard_state(
            self.options.guard,
            open_on,
            &hog,
        ))
    }

    fn poll(&mut self) {
        let Some(events) = self
            .running
            .as_ref()
            .and_then(|r| r.watcher.as_ref())
            .map(DeviceWatcher::take_events)
        else {
            return;
        };
        if events == 0 {
            return;
        }
        let inputs = match hal::input_devices() {
            Ok(inputs) => inputs,
            Err(e) => {
                // Re-signal so the next poll retries (the capture is unchanged meanwhile).
                policy::HAL_SIGNALS.signal(events);
                log::warn!("{}", failed("re-reading the inputs after a HAL change", e));
                return;
            }
        };
        let muted = self.hard_mute();
        let guard = self.options.guard;
        let release = self.options.release_on_mute;
        let selected = self.options.device.clone();
        let Some(running) = self.running.as_mut() else {
            return;
        };
        let now = backend_policy::CaptureNow {
            device: running.capturing.clone(),
            paused: running.capture_paused,
        };
        let (release, recording) = backend_policy::capture_inputs(
            guard,
            release,
            app_recording(&running.devices).unwrap_or(true),
        );
        let device_events = events & !policy::hal_event::MIC_RUNNING;
        let result = match backend_policy::react(
            device_events,
            &inputs,
            selected.as_deref(),
            &now,
            muted,
            release,
            recording,
        ) {
            backend_policy::Reaction::Keep => Ok(()),
            backend_policy::Reaction::Stop => Self::start_bridge(running, None, false),
            backend_policy::Reaction::Restart { id, open, .. } => {
                let target = inputs.iter().find(|d| d.id == id);
                Self::start_bridge(running, target, open)
            }
        };
        if let Err(e) = result {
            // The plug-in keeps its mute state and delivers zeros without a feed.
            log::warn!("following the input change: {e}");
        }
        // A new device (or none): hog mode leaves the old one and, with the guard, takes the new.
        running.apply_guard(guard);
        if events & policy::hal_event::MIC_RUNNING != 0 {
            // An app started or stopped recording HardMute: open or close the physical mic.
            if let Err(e) = self.apply_capture_policy(muted) {
                log::warn!("{e}");
            }
        }
    }

    /// The gate runs in the plug-in inside coreaudiod, so nothing the daemon can reach meters
    /// what apps get; the bridge's capture callback meters the physical mic instead, which is
    /// the room even while muted. So the reading counts only while `'hmut'` reads live before
    /// and after it is read, within one daemon generation (only this daemon can clear the mute,
    /// and every change it makes bumps the generation): zeros otherwise. No bridge (no input,
    /// or released while muted): zeros.
    fn level(&self) -> Option<LevelReading> {
        let running = self.running.as_ref()?;
        let live = || (!running.devices.is_muted().unwrap_or(true)).then_some(self.generation);
        let before = live();
        let captured = match running.bridge.as_ref() {
            Some(bridge) if !running.capture_paused => bridge.captured_level(),
            _ => return Some(LevelReading::default()),
        };
        let after = live();
        Some(self.captured_level.reading(before, captured, after))
    }

    fn stop(&mut self) {
        if let Some(mut running) = self.running.take() {
            // Fail closed first; the plug-in keeps delivering zeros after we are gone.
            match running.devices.set_muted(true) {
                Ok(()) => self.record_change(ChangeSource::FailSafe),
                Err(e) => log::warn!("{}", failed("muting HardMute on stop", e)),
            }
            // Then give hog mode back (the HAL also drops it when this process exits).
            running.apply_guard(false);
            drop(running);
        }
    }
}
