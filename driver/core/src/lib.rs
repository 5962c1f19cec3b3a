//! The hard-mute core: the one piece of logic every HardMute driver runs.
//!
//! `no_std` and allocation-free so the same code runs in the Windows kernel driver, in the macOS
//! HAL plugin inside coreaudiod, and in the PipeWire process callback on Linux — and so the tests
//! here exercise exactly the gate that apps meet.
//!
//! - [`gate`]: exact zeros while muted, an optional fade-in on unmute (never on mute).
//! - [`control`]: the `#[repr(C)]` atomic control block shared across the driver ABI.
//! - [`ring`]: single-producer/single-consumer sample rings from the bridge to delivery.
//! - [`deliver`]: the delivery step each driver's IO path calls; it is where the gate runs.
//! - [`bridge`]: the bridge's side of the ring: convert, resample, push, steer the drift.
//! - [`drift`]: keeping a bridge between two clocks in step (fill-level controller + resampler).
//! - [`convert`]: sample format and channel conversion.
//! - [`level`]: the realtime-safe level meter (peak/RMS windows published through atomics).
#![no_std]
#![forbid(unsafe_op_in_unsafe_fn)]

pub mod bridge;
pub mod control;
pub mod convert;
pub mod deliver;
pub mod drift;
pub mod gate;
pub mod level;
pub mod ring;
pub mod sample;

pub use control::{Authority, ChangeSource, ControlBlock, ControlSnapshot, Cycle, Refused};
pub use gate::Gate;
pub use sample::{Sample, I24};
