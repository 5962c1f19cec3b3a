//! The macOS bridge of `hardmuted`: feeds the physical microphone into the HardMute plug-in and
//! talks to the plug-in's hard-mute property.
//!
//! - [`pump`]: capture side (`hardmute_core::bridge::Feeder`) -> staging ring -> feed side,
//!   drift-corrected (portable, tested here).
//! - [`policy`]: which device to capture, release-on-mute, who is listening (portable, tested).
//! - `macos` (macOS only): coreaudio-rs AudioUnits on the physical mic and on the plug-in's hidden
//!   "HardMute Feed" device, the `'hmut'` property, default-input and process-list queries. It is
//!   type-checked and linked for the Apple targets on Linux; it runs only on a Mac.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod policy;
pub mod pump;

#[cfg(target_os = "macos")]
pub mod macos;
