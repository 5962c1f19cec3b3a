//! hardmuted's macOS backend: the bridge that feeds the physical microphone into the HardMute
//! plug-in, the plug-in's hard-mute property, the device policy and the `MacosBackend` on top.
//!
//! - [`pump`]: capture side (`hardmute_core::bridge::Feeder`) -> staging ring -> feed side,
//!   drift-corrected (portable, tested here).
//! - [`policy`]: which device to capture, release-on-mute, who is listening (portable, tested).
//! - `macos` (macOS only): coreaudio-rs AudioUnits on the physical mic and on the plug-in's hidden
//!   "HardMute Feed" device, the `'hmut'` property, default-input and process-list queries. It is
//!   type-checked and linked for the Apple targets on Linux; it runs only on a Mac.
//! - [`backend_policy`]: the backend's decisions the bridge's `policy` does not make (input
//!   names, selection, listeners, reactions to HAL events; portable, tested).
//! - `MacosBackend` and `default_input` (macOS only): gather the inputs, apply the answers.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod backend_policy;
pub mod policy;
pub mod pump;

#[cfg(target_os = "macos")]
mod backend;
#[cfg(target_os = "macos")]
pub mod default_input;
#[cfg(target_os = "macos")]
pub mod macos;

#[cfg(target_os = "macos")]
pub use backend::MacosBackend;
