//! The Windows backend: the HardMute kernel driver (PortCls WaveRT virtual mic, see
//! `driver/windows`) holds the hard-mute state and gates delivery; this backend is its client.
//!
//! - Control: `\\.\HardMuteControl`, IOCTL ABI v1 (`hardmute_windows_model::ioctl`): GET_STATE,
//!   SET_MUTE (the driver completes a mute only once no realtime cycle can use the old state),
//!   REGISTER_BRIDGE (an overlapped request the driver keeps pending; its output buffer, a
//!   VirtualAlloc'd `hardmute_core` SharedRing, stays locked in the kernel until the request is
//!   cancelled, which happens when we stop or the process dies: the driver then delivers zeros).
//! - Bridge: WASAPI shared-mode capture of the physical mic (`hardmute-windows-audio`), event
//!   driven on an MMCSS "Pro Audio" thread, into the ring through [`feed::CaptureFeed`].
//! - Follows default-device changes, releases the mic while muted if asked, lists who captures
//!   which endpoint.
//!
//! Portable and tested everywhere: [`policy`] (decisions) and [`feed`] (the realtime step).
//! Windows only: `control_device` (DeviceIoControl) and `backend` (threads + COM).

pub mod feed;
pub mod policy;

#[cfg(windows)]
mod backend;
// pub: the wine kernel probe (tests/wine-kernel/probe) drives the driver with this client.
#[cfg(windows)]
pub mod control_device;

#[cfg(windows)]
pub use backend::WindowsBackend;
#[cfg(windows)]
pub use control_device::CONTROL_DEVICE_PATH;
