//! The backend this build runs, picked by name: the platform's real one (its crate under
//! `userspace/backend/<os>`, a dependency only on that OS) or the simulated one. The `cfg`s stay
//! here, at the module edge, like cpal's hosts; the trait and its types are `hardmute-backend`'s
//! and re-exported as they were.

pub use hardmute_backend::*;

#[cfg(target_os = "linux")]
pub use hardmute_backend_linux as linux;
#[cfg(target_os = "macos")]
pub use hardmute_backend_macos as macos;
#[cfg(windows)]
pub use hardmute_backend_windows as windows;

/// The backends compiled into this build, first = default. A platform backend goes first under
/// its cfg (e.g. `#[cfg(target_os = "linux")] "linux",` before `"simulated"`), with its arm in
/// [`create`] and in [`default_input`], and its crate re-exported above under the same cfg.
pub const AVAILABLE: &[&str] = &[
    #[cfg(target_os = "macos")]
    "macos",
    #[cfg(target_os = "linux")]
    "linux",
    #[cfg(windows)]
    "windows",
    "simulated",
];

/// Creates the backend called `name`.
pub fn create(name: &str, options: BackendOptions) -> Result<Box<dyn Backend>, BackendError> {
    match name {
        "simulated" => Ok(Box::new(simulated::SimulatedBackend::new(options))),
        #[cfg(target_os = "linux")]
        "linux" => Ok(Box::new(linux::LinuxBackend::new(options))),
        #[cfg(target_os = "macos")]
        "macos" => Ok(Box::new(macos::MacosBackend::new(options))),
        #[cfg(windows)]
        "windows" => Ok(Box::new(windows::WindowsBackend::new(options))),
        other => Err(BackendError::Failed(format!(
            "backend {other:?} is not compiled into this build; available: {}",
            AVAILABLE.join(", ")
        ))),
    }
}

/// The platform's real backend when compiled in, else the simulated one.
pub fn default_name() -> &'static str {
    AVAILABLE[0]
}

/// The OS layer of the default input for the backend called `name`, if it manages one: Linux
/// (PipeWire metadata), macOS (the HAL's default input device), Windows (IPolicyConfig, when
/// the HardMute Microphone endpoint is there); the simulated backend has no OS default.
pub fn default_input(name: &str) -> Option<Box<dyn DefaultInputOs>> {
    match name {
        #[cfg(target_os = "linux")]
        "linux" => Some(Box::new(linux::default_input::PipeWireDefault)),
        #[cfg(target_os = "macos")]
        "macos" => Some(Box::new(macos::default_input::MacDefault)),
        #[cfg(windows)]
        "windows" => windows::default_input::WindowsDefault::find()
            .map(|d| Box::new(d) as Box<dyn DefaultInputOs>),
        _ => None,
    }
}
