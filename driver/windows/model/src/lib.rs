//! Portable logic of the HardMute Windows WaveRT capture miniport.
//!
//! The kernel crate (`driver/windows`) is thin unsafe FFI glue: it turns PortCls calls,
//! timer callbacks and control-device IRPs into calls on these types, which are exercised
//! on Linux by a simulated PortCls (`tests/`). `no_std`, no allocation.
#![no_std]
#![forbid(unsafe_code)]

pub mod clock;
pub mod format;
pub mod guid;
pub mod ioctl;
pub mod ks;
pub mod miniport;
pub mod packets;
pub mod security;
pub mod status;
pub mod stream;
