//! What the daemon needs from whatever hosts the virtual mic: the [`Backend`] trait every OS
//! implements, with its options, status and errors.
//!
//! One crate per OS backend beside this one, like cpal's hosts: `userspace/backend/linux`
//! (PipeWire), `userspace/backend/macos` (the HAL plug-in), `userspace/backend/windows` (the
//! WaveRT driver); [`simulated`] here, on every OS (tests, demos). hardmuted picks one by name,
//! with the `cfg` at its module edge (`hardmuted::backend`).
//!
//! The contract every backend keeps (docs/design.md, invariants 2 and 4):
//! - `start(initial_muted)` applies the mute before any audio can flow to an app;
//! - `set_hard_mute` returns only once the realtime path will see the new state: the first
//!   buffer delivered after it returns `Ok` for a mute is all zeros;
//! - on any failure the virtual mic stays (or becomes) muted, never the reverse.

// How the Windows and macOS backends keep a meter of the captured input at 0 while muted.
pub mod captured_level;
pub mod default_input;
pub mod simulated;

pub use default_input::DefaultInputOs;

pub use hardmute_ipc::GuardState;
use hardmute_ipc::{ChangeSource, Counters, ErrorBody, ErrorKind, InputDevice, Listener};
use std::fmt;

/// Settings a backend is created with (from the persisted state).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendOptions {
    /// Unmute fade-in length.
    pub fade_ms: u32,
    /// The physical input to open; `None` = the system default.
    pub device: Option<String>,
    /// Close the physical mic while muted.
    pub release_on_mute: bool,
    /// Hold the physical mic so no other app can open it ([`Backend::set_guard`]).
    pub guard: bool,
}

/// What the driver reports, for `status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendStatus {
    pub muted: bool,
    pub generation: u64,
    pub source: ChangeSource,
    /// The physical input currently feeding the virtual mic (`None` = default).
    pub device: Option<String>,
    /// Whether the physical mic is open right now.
    pub physical_open: bool,
    pub counters: Counters,
}

impl BackendStatus {
    /// A backend that is not running (not started, or stopped): nothing can flow, so muted, the
    /// mic closed, no counts. `device` is the configured input, if any.
    pub fn not_running(device: Option<String>) -> Self {
        BackendStatus {
            muted: true,
            generation: 0,
            source: ChangeSource::Startup,
            device,
            physical_open: false,
            counters: Counters::default(),
        }
    }
}

/// The level of the virtual mic's signal over the backend's last metering window (about
/// 50 ms), linear full scale; zeros while muted (see [`Backend::level`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LevelReading {
    pub peak: f32,
    pub rms: f32,
    /// Windows measured so far; unchanged between two reads = nothing new was measured.
    pub windows: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendError {
    /// `select_input` named an input that does not exist.
    UnknownInput {
        name: String,
        available: Vec<String>,
    },
    /// Called before `start` or after `stop`.
    NotRunning,
    /// The driver or audio server failed.
    Failed(String),
    /// The driver refused: the virtual mic belongs to another user (the message says whose,
    /// as far as the driver tells).
    NotOwner(String),
    /// This backend does not do what was asked (the message says what to use instead).
    Unsupported(String),
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownInput { name, available } if available.is_empty() => {
                write!(
                    f,
                    "no input named {name:?}; no physical inputs are available"
                )
            }
            Self::UnknownInput { name, available } => {
                write!(
                    f,
                    "no input named {name:?}; available: {}",
                    available.join(", ")
                )
            }
            Self::NotRunning => f.write_str("the backend is not running"),
            Self::Failed(message) | Self::NotOwner(message) | Self::Unsupported(message) => {
                f.write_str(message)
            }
        }
    }
}

impl std::error::Error for BackendError {}

/// How the daemon answers a client when the backend failed (the IPC's error kinds).
impl From<BackendError> for ErrorBody {
    fn from(e: BackendError) -> Self {
        let kind = match e {
            BackendError::UnknownInput { .. } => ErrorKind::UnknownDevice,
            BackendError::NotRunning | BackendError::Failed(_) => ErrorKind::Backend,
            BackendError::NotOwner(_) => ErrorKind::NotOwner,
            BackendError::Unsupported(_) => ErrorKind::Refused,
        };
        ErrorBody::new(kind, e.to_string())
    }
}

pub trait Backend: Send {
    /// Short name shown in `status` (`simulated`, `linux`, ...).
    fn name(&self) -> &'static str;

    /// Creates or finds the virtual mic with `initial_muted` applied before audio can flow,
    /// then starts the bridge from the physical mic.
    fn start(&mut self, initial_muted: bool) -> Result<(), BackendError>;

    /// Sets the hard mute. Returns only once the realtime path will see it.
    /// `source` is recorded in the driver's control block.
    fn set_hard_mute(&mut self, muted: bool, source: ChangeSource) -> Result<(), BackendError>;

    /// The hard-mute flag as the driver holds it.
    fn hard_mute(&self) -> bool;

    /// Everything `status` reports about the driver.
    fn status(&self) -> BackendStatus;

    /// Physical inputs that can feed the virtual mic (never the virtual mic itself).
    fn physical_inputs(&self) -> Result<Vec<InputDevice>, BackendError>;

    /// Switches the bridge to another physical input (`None` = system default). An unknown name
    /// is a typed error listing the available inputs; the mute state and the virtual mic are
    /// unaffected either way.
    fn select_input(&mut self, name: Option<&str>) -> Result<(), BackendError>;

    /// Processes capturing the virtual mic or a physical one.
    fn listeners(&self) -> Result<Vec<Listener>, BackendError>;

    /// Close the physical mic while muted (reopened on unmute).
    fn set_release_on_mute(&mut self, release: bool) -> Result<(), BackendError>;

    /// The guard held by hardmuted: while `on`, the bridge holds the physical mic so that no
    /// other app can open it (macOS: hog mode on the device; Windows: the capture stream in
    /// exclusive mode), whether or not an app records HardMute and whatever release-on-mute
    /// says. Holding can fail (another process hogs the device, exclusive mode refused): the
    /// setting stays on, audio keeps flowing (shared mode), and [`Backend::guard`] says it does
    /// not hold and why. The default: no daemon-held guard here (Linux: the guard is PipeWire
    /// and WirePlumber configuration written by `hardmute guard on`).
    fn set_guard(&mut self, _on: bool) -> Result<(), BackendError> {
        Err(BackendError::Unsupported(format!(
            "the {} backend has no guard held by hardmuted",
            self.name()
        )))
    }

    /// The daemon-held guard's setting and whether it holds now; `None` = this backend has none
    /// ([`Backend::set_guard`]).
    fn guard(&self) -> Option<GuardState> {
        None
    }

    /// Called by the server every poll interval, on its own thread (never a realtime one): a
    /// backend applies here what it was told asynchronously (the macOS HAL's default-input and
    /// hot-plug notifications) and repairs what it lost (PipeWire restarted). The mute state
    /// must not change here.
    fn poll(&mut self) {}

    /// Stops the bridge. The virtual mic stays muted-or-silent (fail closed).
    fn stop(&mut self);

    /// Set while the driver refuses this user control of the virtual mic because another user
    /// owns it (why, as the driver told it). The daemon stays up muted and reports it in its
    /// state; adding mute stays allowed, unmuting is refused with `NotOwner`.
    fn not_owner(&self) -> Option<String> {
        None
    }

    /// The level of the virtual mic's signal over the last metering window: 0 while muted
    /// whatever the room does. Linux and simulated measure after the gate; Windows and macOS,
    /// whose gate is in the driver, measure the bridge's captured input and report it only
    /// while the driver says live ([`captured_level::CapturedLevel`]). `None`: this backend
    /// has no meter. The daemon sends it to level subscribers only while live (it never asks
    /// while muted).
    fn level(&self) -> Option<LevelReading> {
        None
    }
}
