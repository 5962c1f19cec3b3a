//! HardMute's macOS driver: an AudioServerPlugIn (HAL plug-in) loaded by coreaudiod, providing the
//! "HardMute Microphone". Its ReadInput is where the hard-mute gate runs: while hard-muted, every
//! sample any app reads is exactly zero, whatever the bridge fed in.
//!
//! Layers, thinnest unsafe at the bottom:
//! - [`abi`]: the hand-written `#[repr(C)]` plug-in interface (no crate binds it), with layout
//!   assertions; [`consts`]: the CoreAudio constants (asserted equal to objc2-core-audio's on macOS).
//! - [`driver`]: the exported factory and the vtable; raw pointers end here.
//! - [`plugin`]: state, clients, properties, configuration changes, clock and IO in safe Rust;
//!   [`model`]: the objects and their static description.
//! - [`oslog`]: the `log` crate's records, written to the unified log (os_log).
//! - [`cf`] and [`clock`]: seams over CoreFoundation and the host clock, so everything above runs
//!   on Linux under the simulated coreaudiod (tests/sim_coreaudiod.rs).
#![allow(non_snake_case, non_upper_case_globals)] // Apple's names, kept as in the SDK headers
#![deny(unsafe_op_in_unsafe_fn)]

pub mod abi;
pub mod cf;
pub mod clock;
pub mod consts;
pub mod driver;
pub mod identity;
pub mod model;
pub mod oslog;
pub mod plugin;

pub use driver::AudioServerPlugIn_Factory;

// Unit tests count heap operations (oslog's stack-formatted messages).
#[cfg(test)]
#[global_allocator]
static GLOBAL: hardmute_alloc_counter::CountingAllocator =
    hardmute_alloc_counter::CountingAllocator;
