//! The simulated backend: the real `hardmute-core` gate, control block and ring, fed by a fake
//! physical mic and read by a fake app, all in-process. `hardmute status/toggle/watch` against
//! it drive exactly the delivery code the drivers run.
//!
//! Threads:
//! - *mic* (the bridge): every period, generates a buffer from the selected fake input (a sine or
//!   deterministic noise, never silence) and pushes it into a `ringbuf` ring; a full ring counts
//!   an overrun. With release-on-mute it stops capturing while muted (the "physical mic" closes).
//! - *app* (the delivery side): every period, calls `deliver_from_ring` like a driver's IO path,
//!   then checks what it got: a cycle that began under an acknowledged mute and saw no change of
//!   generation must be all zeros; every non-zero sample there is counted
//!   (`nonzero_samples_while_muted`, which must stay 0). It also meters what it got, as the
//!   Linux filter does: peak and RMS per 50 ms window of the *delivered* audio (0 while muted).
//!
//! The guard ([`Backend::set_guard`]) is modelled as the macOS and Windows backends keep it: while
//! on, the fake physical mic stays open whatever release-on-mute says, and the guard holds while
//! it is open, unless `HARDMUTE_SIM_GUARD_TAKEN=<who>` plays another process already holding
//! the device (hog mode / exclusive mode taken): then it does not hold and says why, and the
//! audio keeps flowing (the fallback to shared mode).
//!
//! `HARDMUTE_SIM_NOT_OWNER=<why>` plays a device owned by another user (the Windows driver's and
//! the macOS plug-in's rule): it starts muted, adding mute works, unmuting is refused with
//! `NotOwner`, and `not_owner` says why (for the panel's tests; nothing else reads it).

use super::{Backend, BackendError, BackendOptions, BackendStatus, GuardState, LevelReading};
use hardmute_core::control::{Authority, ControlBlock};
use hardmute_core::deliver::deliver_from_ring;
use hardmute_core::gate::{fade_frames_for, Gate};
use hardmute_core::ring::RbConsumer;
use hardmute_ipc::{ChangeSource, Counters, InputDevice, ListenTarget, Listener};
use ringbuf::traits::{Producer, Split};
use ringbuf::HeapRb;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

pub const RATE_HZ: u32 = 48_000;
pub const CHANNELS: usize = 2;
/// 10 ms periods, as a typical audio server quantum.
pub const PERIOD_FRAMES: usize = 480;
const PERIOD: Duration = Duration::from_millis(10);
/// Periods per level window (50 ms, as the Linux filter's).
const LEVEL_WINDOW_PERIODS: u32 = 5;
/// Four periods of slack between the two fake clocks.
const RING_SAMPLES: usize = PERIOD_FRAMES * CHANNELS * 4;

/// The fake physical inputs: (name, description). The first is the system default.
const INPUTS: &[(&str, &str)] = &[
    ("sim-sine", "Simulated microphone (440 Hz sine)"),
    ("sim-noise", "Simulated microphone (deterministic noise)"),
];

/// Set to play a device that another user owns (see the module docs).
pub const NOT_OWNER_ENV: &str = "HARDMUTE_SIM_NOT_OWNER";
/// Set to play another process holding the physical mic (see the module docs).
pub const GUARD_TAKEN_ENV: &str = "HARDMUTE_SIM_GUARD_TAKEN";

/// State shared with the two threads.
struct Shared {
    control: ControlBlock,
    running: AtomicBool,
    /// Index into INPUTS.
    input: AtomicUsize,
    release_on_mute: AtomicBool,
    /// The guard holds the fake mic open (release-on-mute then does not apply).
    guard: AtomicBool,
    physical_open: AtomicBool,
    nonzero_while_muted: AtomicU64,
    /// The last level window of the delivered audio (f32 bits) and how many were published.
    level_peak: AtomicU32,
    level_rms: AtomicU32,
    level_windows: AtomicU64,
}

/// Peak and RMS of delivered periods, published every [`LEVEL_WINDOW_PERIODS`].
#[derive(Default)]
struct SimMeter {
    periods: u32,
    peak: f32,
    sum_squares: f64,
    samples: usize,
}

impl SimMeter {
    fn add(&mut self, delivered: &[f32], shared: &Shared) {
        for &s in delivered {
            self.peak = self.peak.max(s.abs());
            self.sum_squares += f64::from(s) * f64::from(s);
        }
        self.samples += delivered.len();
        self.periods += 1;
        if self.periods >= LEVEL_WINDOW_PERIODS {
            let rms = (self.sum_squares / self.samples.max(1) as f64).sqrt() as f32;
            shared
                .level_peak
                .store(self.peak.to_bits(), Ordering::Relaxed);
            shared.level_rms.store(rms.to_bits(), Ordering::Relaxed);
            shared.level_windows.fetch_add(1, Ordering::Release);
            *self = Self::default();
        }
    }
}

pub struct SimulatedBackend {
    options: BackendOptions,
    shared: Option<Arc<Shared>>,
    threads: Vec<JoinHandle<()>>,
    not_owner: Option<String>,
    /// Who holds the fake mic already, so the guard cannot (see the module docs).
    guard_taken: Option<String>,
}

fn input_index(name: Option<&str>) -> Result<usize, BackendError> {
    match name {
        None => Ok(0),
        Some(name) => {
            INPUTS
                .iter()
                .position(|(n, _)| *n == name)
                .ok_or_else(|| BackendError::UnknownInput {
                    name: name.to_owned(),
                    available: INPUTS.iter().map(|(n, _)| (*n).to_owned()).collect(),
                })
        }
    }
}

impl SimulatedBackend {
    pub fn new(options: BackendOptions) -> Self {
        let not_owner = std::env::var(NOT_OWNER_ENV).ok().filter(|v| !v.is_empty());
        let mut backend = Self::with_owner(options, not_owner);
        backend.guard_taken = std::env::var(GUARD_TAKEN_ENV)
            .ok()
            .filter(|v| !v.is_empty());
        backend
    }

    /// Plays `who` already holding the physical mic: the guard cannot take it.
    pub fn with_guard_taken(mut self, who: &str) -> Self {
        self.guard_taken = Some(who.to_owned());
        self
    }

    /// `not_owner`: play a device another user owns (why, as a driver would say it).
    pub fn with_owner(options: BackendOptions, not_owner: Option<String>) -> Self {
        Self {
            options,
            shared: None,
            threads: Vec::new(),
            not_owner,
            guard_taken: None,
        }
    }

    fn shared(&self) -> Result<&Arc<Shared>, BackendError> {
        self.shared.as_ref().ok_or(BackendError::NotRunning)
    }
}

/// Sleeps until `*next`, then advances it one period (catching up without bursts if late).
fn tick(next: &mut Instant) {
    let now = Instant::now();
    if *next > now {
        thread::sleep(*next - now);
    } else if now - *next > PERIOD * 4 {
        *next = now;
    }
    *next += PERIOD;
}

/// One period of the selected fake input, never silent, so a leak cannot hide.
fn fill_input(input: usize, phase: &mut u64, buf: &mut [f32]) {
    for frame in buf.chunks_exact_mut(CHANNELS) {
        let t = *phase;
        *phase = phase.wrapping_add(1);
        let value = if input == 0 {
            let x = (t % u64::from(RATE_HZ)) as f32 / RATE_HZ as f32;
            0.5 * (2.0 * std::f32::consts::PI * 440.0 * x).sin() + 0.01
        } else {
            // xorshift-style hash of the frame index: deterministic, never exactly 0.
            let mut h = t.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            h ^= h >> 29;
            ((h % 2000) as f32 / 1000.0 - 1.0) * 0.4 + 0.001
        };
        frame.fill(value);
    }
}

fn mic_thread(shared: Arc<Shared>, mut producer: impl Producer<Item = f32>) {
    let mut buf = vec![0.0f32; PERIOD_FRAMES * CHANNELS];
    let mut phase = 0u64;
    let mut next = Instant::now();
    while shared.running.load(Ordering::Acquire) {
        tick(&mut next);
        let release = shared.release_on_mute.load(Ordering::Acquire)
            && shared.control.is_muted()
            && !shared.guard.load(Ordering::Acquire);
        shared.physical_open.store(!release, Ordering::Release);
        if release {
            continue; // the physical mic is closed: nothing captured
        }
        fill_input(shared.input.load(Ordering::Acquire), &mut phase, &mut buf);
        if producer.push_slice(&buf) < buf.len() {
            shared.control.note_overrun();
        }
        shared.control.heartbeat();
    }
    shared.physical_open.store(false, Ordering::Release);
}

fn app_thread(
    shared: Arc<Shared>,
    mut ring: RbConsumer<impl ringbuf::traits::Consumer<Item = f32>>,
    fade_ms: u32,
) {
    let mut gate = Gate::new(fade_frames_for(RATE_HZ, fade_ms));
    let mut out = vec![0.0f32; PERIOD_FRAMES * CHANNELS];
    let mut meter = SimMeter::default();
    let mut next = Instant::now() + PERIOD; // let the mic get one period ahead
    while shared.running.load(Ordering::Acquire) {
        tick(&mut next);
        let before = shared.control.snapshot();
        deliver_from_ring(&shared.control, &mut gate, &mut ring, &mut out, CHANNELS);
        meter.add(&out, &shared);
        let after = shared.control.snapshot();
        let leaked = leaked_samples(before.muted, before.generation, after.generation, &out);
        if leaked > 0 {
            shared
                .nonzero_while_muted
                .fetch_add(leaked, Ordering::Relaxed);
        }
    }
}

/// Non-zero samples in a buffer an app read during a cycle that must have run muted: the
/// control block said muted before the cycle began and its generation did not move until the
/// cycle ended. Bit-exact: -0.0 counts as a leak too. A cycle during which the state changed is
/// not judged (it may legitimately carry audio from before a mute).
fn leaked_samples(
    muted_before: bool,
    generation_before: u64,
    generation_after: u64,
    out: &[f32],
) -> u64 {
    if muted_before && generation_after == generation_before {
        out.iter().filter(|s| s.to_bits() != 0).count() as u64
    } else {
        0
    }
}

impl Backend for SimulatedBackend {
    fn name(&self) -> &'static str {
        "simulated"
    }

    fn start(&mut self, initial_muted: bool) -> Result<(), BackendError> {
        if self.shared.is_some() {
            return Ok(());
        }
        let initial_muted = initial_muted || self.not_owner.is_some();
        // An input that is gone is not a reason to leave the virtual mic down: start on the
        // default one; the daemon's select_input reports the missing one.
        let input = input_index(self.options.device.as_deref()).unwrap_or(0);
        // The control block exists, with the mute applied, before either thread starts.
        let shared = Arc::new(Shared {
            control: ControlBlock::new(initial_muted),
            running: AtomicBool::new(true),
            input: AtomicUsize::new(input),
            release_on_mute: AtomicBool::new(self.options.release_on_mute),
            guard: AtomicBool::new(self.options.guard),
            physical_open: AtomicBool::new(false),
            nonzero_while_muted: AtomicU64::new(0),
            level_peak: AtomicU32::new(0),
            level_rms: AtomicU32::new(0),
            level_windows: AtomicU64::new(0),
        });
        let (producer, consumer) = HeapRb::<f32>::new(RING_SAMPLES).split();
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .map_err(|e| BackendError::Failed(format!("cannot start the {name} thread: {e}")))
        };
        let mic = {
            let shared = shared.clone();
            spawn("sim-mic", Box::new(move || mic_thread(shared, producer)))?
        };
        let fade_ms = self.options.fade_ms;
        let app = {
            let shared = shared.clone();
            spawn(
                "sim-app",
                Box::new(move || app_thread(shared, RbConsumer(consumer), fade_ms)),
            )
        };
        let app = match app {
            Ok(app) => app,
            Err(e) => {
                shared.running.store(false, Ordering::Release);
                let _ = mic.join();
                return Err(e);
            }
        };
        self.threads = vec![mic, app];
        self.shared = Some(shared);
        Ok(())
    }

    fn not_owner(&self) -> Option<String> {
        self.not_owner.clone()
    }

    fn set_hard_mute(&mut self, muted: bool, source: ChangeSource) -> Result<(), BackendError> {
        let shared = self.shared()?;
        if let (false, Some(why)) = (muted, &self.not_owner) {
            return Err(BackendError::NotOwner(why.clone()));
        }
        shared
            .control
            .set_muted(muted, source, Authority::Owner)
            .map_err(|e| BackendError::Failed(format!("the driver refused the change: {e}")))?;
        // A cycle takes microseconds; 5 s means the delivery thread is stuck (it then delivers
        // nothing at all, which is still closed).
        if shared
            .control
            .wait_until_effective(|| thread::sleep(Duration::from_micros(200)), 25_000)
        {
            Ok(())
        } else {
            Err(BackendError::Failed(
                "the delivery thread did not finish its cycle in 5 s".into(),
            ))
        }
    }

    fn hard_mute(&self) -> bool {
        // Not started = nothing can flow = muted.
        self.shared.as_ref().is_none_or(|s| s.control.is_muted())
    }

    fn status(&self) -> BackendStatus {
        let Some(shared) = &self.shared else {
            return BackendStatus::not_running(self.options.device.clone());
        };
        let snap = shared.control.snapshot();
        let input = shared.input.load(Ordering::Acquire);
        BackendStatus {
            muted: snap.muted,
            generation: snap.generation,
            source: snap.source(),
            device: (input != 0).then(|| INPUTS[input].0.to_owned()),
            physical_open: shared.physical_open.load(Ordering::Acquire),
            counters: Counters {
                frames_delivered: snap.frames_delivered,
                frames_zeroed: snap.frames_zeroed,
                underruns: snap.underruns,
                overruns: snap.overruns,
                nonzero_samples_while_muted: Some(
                    shared.nonzero_while_muted.load(Ordering::Relaxed),
                ),
            },
        }
    }

    fn physical_inputs(&self) -> Result<Vec<InputDevice>, BackendError> {
        Ok(INPUTS
            .iter()
            .enumerate()
            .map(|(i, (name, description))| InputDevice {
                name: (*name).to_owned(),
                description: (*description).to_owned(),
                is_default: i == 0,
            })
            .collect())
    }

    fn select_input(&mut self, name: Option<&str>) -> Result<(), BackendError> {
        let index = input_index(name)?;
        self.shared()?.input.store(index, Ordering::Release);
        self.options.device = name.map(str::to_owned);
        Ok(())
    }

    fn listeners(&self) -> Result<Vec<Listener>, BackendError> {
        let shared = self.shared()?;
        let binary = std::env::current_exe()
            .ok()
            .map(|p| p.display().to_string());
        let mut listeners = vec![Listener {
            app: "simulated app".into(),
            pid: Some(std::process::id()),
            binary: binary.clone(),
            target: ListenTarget::Virtual,
            own: false,
        }];
        if shared.physical_open.load(Ordering::Acquire) {
            let input = INPUTS[shared.input.load(Ordering::Acquire)].0;
            listeners.push(Listener {
                app: "hardmuted bridge".into(),
                pid: Some(std::process::id()),
                binary,
                target: ListenTarget::Physical {
                    name: input.to_owned(),
                },
                own: true,
            });
        }
        Ok(listeners)
    }

    fn set_release_on_mute(&mut self, release: bool) -> Result<(), BackendError> {
        self.shared()?
            .release_on_mute
            .store(release, Ordering::Release);
        self.options.release_on_mute = release;
        Ok(())
    }

    fn set_guard(&mut self, on: bool) -> Result<(), BackendError> {
        self.shared()?.guard.store(on, Ordering::Release);
        self.options.guard = on;
        Ok(())
    }

    fn guard(&self) -> Option<GuardState> {
        let open = self
            .shared
            .as_ref()
            .is_some_and(|s| s.physical_open.load(Ordering::Acquire));
        let on = self.options.guard;
        let why_not = match (on, &self.guard_taken, open) {
            (false, ..) => None,
            (true, Some(who), _) => Some(format!(
                "{who} already holds the physical mic; capturing in shared mode"
            )),
            (true, None, false) => Some("the physical mic is not open".into()),
            (true, None, true) => None,
        };
        Some(GuardState {
            on,
            holds: on && why_not.is_none(),
            why_not,
        })
    }

    fn level(&self) -> Option<LevelReading> {
        let shared = self.shared.as_ref()?;
        let windows = shared.level_windows.load(Ordering::Acquire);
        Some(LevelReading {
            peak: f32::from_bits(shared.level_peak.load(Ordering::Relaxed)),
            rms: f32::from_bits(shared.level_rms.load(Ordering::Relaxed)),
            windows,
        })
    }

    fn stop(&mut self) {
        if let Some(shared) = self.shared.take() {
            // Fail closed first, then stop feeding.
            let _ = shared
                .control
                .set_muted(true, ChangeSource::FailSafe, Authority::Owner);
            shared.running.store(false, Ordering::Release);
            for thread in self.threads.drain(..) {
                let _ = thread.join();
            }
        }
    }
}

impl Drop for SimulatedBackend {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leak_check_counts_only_cycles_that_ran_muted() {
        let mut out = vec![0.0f32; 8];
        assert_eq!(leaked_samples(true, 3, 3, &out), 0);
        out[2] = 0.25;
        out[5] = -0.0;
        assert_eq!(
            leaked_samples(true, 3, 3, &out),
            2,
            "a sample and a negative zero leaked"
        );
        assert_eq!(
            leaked_samples(true, 3, 4, &out),
            0,
            "state changed during the cycle: not judged"
        );
        assert_eq!(
            leaked_samples(false, 3, 3, &out),
            0,
            "unmuted: audio is expected"
        );
    }

    #[test]
    fn starts_muted_and_every_input_produces_audio() {
        for (i, _) in INPUTS.iter().enumerate() {
            let mut buf = vec![0.0f32; PERIOD_FRAMES * CHANNELS];
            let mut phase = 0;
            fill_input(i, &mut phase, &mut buf);
            assert!(
                buf.iter().all(|s| *s != 0.0),
                "input {i} must never be silent, or a leak could hide"
            );
        }
        let mut backend = SimulatedBackend::new(BackendOptions {
            fade_ms: 5,
            device: None,
            release_on_mute: false,
            guard: false,
        });
        assert!(backend.hard_mute(), "not started = muted");
        backend.start(true).unwrap();
        assert!(backend.hard_mute());
        backend.set_hard_mute(false, ChangeSource::Cli).unwrap();
        assert!(!backend.hard_mute());
        assert_eq!(backend.status().source, ChangeSource::Cli);
        let err = backend.select_input(Some("nope")).unwrap_err();
        assert_eq!(
            err,
            BackendError::UnknownInput {
                name: "nope".into(),
                available: vec!["sim-sine".into(), "sim-noise".into()]
            }
        );
        backend.stop();
        assert!(backend.hard_mute(), "stopped = muted");
    }

    fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn the_guard_holds_the_mic_open_through_release_on_mute_unless_taken() {
        let options = BackendOptions {
            fade_ms: 5,
            device: None,
            release_on_mute: true,
            guard: false,
        };
        let mut backend = SimulatedBackend::with_owner(options.clone(), None);
        assert_eq!(backend.set_guard(true), Err(BackendError::NotRunning));
        backend.start(true).unwrap();
        let off = GuardState::default();
        assert_eq!(backend.guard(), Some(off.clone()));
        wait_for("release-on-mute to close the mic", || {
            !backend.status().physical_open
        });
        backend.set_guard(true).unwrap();
        wait_for("the guard to hold the mic open while muted", || {
            backend.status().physical_open
        });
        assert_eq!(
            backend.guard(),
            Some(GuardState {
                on: true,
                holds: true,
                why_not: None
            })
        );
        backend.set_guard(false).unwrap();
        assert_eq!(backend.guard(), Some(off));
        wait_for("release-on-mute to apply again", || {
            !backend.status().physical_open
        });
        backend.stop();

        let mut taken = SimulatedBackend::with_owner(
            BackendOptions {
                guard: true,
                ..options
            },
            None,
        )
        .with_guard_taken("pid 77");
        taken.start(true).unwrap();
        wait_for("the mic to open (shared)", || taken.status().physical_open);
        let g = taken.guard().unwrap();
        assert!(g.on && !g.holds, "{g:?}");
        assert!(g.why_not.unwrap().contains("pid 77"));
        taken.stop();
    }
}
