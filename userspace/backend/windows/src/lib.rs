//! hardmuted's Windows backend: the HardMute kernel driver (PortCls WaveRT virtual mic, see
//! `driver/windows`) holds the hard-mute state and gates delivery; `WindowsBackend` is its
//! client.
//!
//! - Control: `\\.\HardMuteControl`, IOCTL ABI v1 (`hardmute_windows_model::ioctl`): GET_STATE,
//!   SET_MUTE (the driver completes a mute only once no realtime cycle can use the old state),
//!   REGISTER_BRIDGE (an overlapped request the driver keeps pending; its output buffer, a
//!   VirtualAlloc'd `hardmute_core` SharedRing, stays locked in the kernel until the request is
//!   cancelled, which happens when we stop or the process dies: the driver then delivers zeros).
//! - Bridge: WASAPI shared-mode capture of the physical mic (the WASAPI glue below), event
//!   driven on an MMCSS "Pro Audio" thread, into the ring through [`feed::CaptureFeed`].
//! - Follows default-device changes, releases the mic while muted if asked, lists who captures
//!   which endpoint; the default input through IPolicyConfig (`default_input`).
//!
//! Portable and tested everywhere: [`policy`] (decisions), [`feed`] (the realtime step),
//! [`format`] and the plain types below. Windows only: `control_device` (DeviceIoControl),
//! `backend` (threads + COM), `default_input`, and the WASAPI glue.
//!
//! The WASAPI glue is shaped like the windows-drivers-rs samples: the COM calls live in thin
//! modules compiled only on Windows (`devices`, `capture`, `notify`, `sessions`), each `unsafe`
//! block at the FFI edge with its `// SAFETY:` note; everything they hand upwards is one of the
//! plain types below, so the policy that uses them is portable and tested on every OS.

pub mod feed;
pub mod policy;

#[cfg(windows)]
mod backend;
// pub: the wine kernel probe (tests/wine-kernel/probe) drives the driver with this client.
#[cfg(windows)]
pub mod control_device;
#[cfg(windows)]
pub mod default_input;

#[cfg(windows)]
pub use backend::WindowsBackend;
#[cfg(windows)]
pub use control_device::CONTROL_DEVICE_PATH;

pub mod format;
/// The default capture endpoint (undocumented IPolicyConfig, isolated; layout asserted).
pub mod policy_config;

#[cfg(windows)]
pub mod capture;
#[cfg(windows)]
mod com;
#[cfg(windows)]
pub mod devices;
#[cfg(windows)]
pub mod notify;
#[cfg(windows)]
pub mod sessions;

#[cfg(windows)]
pub use com::ComApartment;
pub use format::{MixFormat, SampleKind, Samples};

use std::fmt;

/// A capture endpoint as WASAPI reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointInfo {
    /// The endpoint id string (`{0.0.1.00000000}.{guid}`): stable across reboots.
    pub id: String,
    /// `PKEY_Device_FriendlyName`, e.g. "Microphone (USB Audio Device)".
    pub name: String,
    /// The default capture endpoint for the console role.
    pub is_default: bool,
}

/// One audio session on a capture endpoint: a process that has (or had) a capture stream open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    pub endpoint_id: String,
    pub endpoint_name: String,
    /// 0 for the system session (no process).
    pub pid: u32,
    /// Full path of the process image, when the process could be opened.
    pub exe: Option<String>,
    /// `AudioSessionStateActive`: a stream is running right now.
    pub active: bool,
}

/// What an `IMMNotificationClient` callback reported (only capture-side events are forwarded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceEvent {
    /// The default capture endpoint for the console role changed (`None`: there is none now).
    DefaultCaptureChanged(Option<String>),
    Added(String),
    Removed(String),
    /// `DEVICE_STATE_*` of an endpoint changed.
    StateChanged {
        id: String,
        state: u32,
    },
}

/// A failed WASAPI/COM call: which step, and the HRESULT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioError {
    pub context: String,
    pub hresult: i32,
    pub message: String,
}

impl AudioError {
    pub fn new(context: impl Into<String>, hresult: i32, message: impl Into<String>) -> Self {
        AudioError {
            context: context.into(),
            hresult,
            message: message.into(),
        }
    }

    /// `E_NOTFOUND` (HRESULT_FROM_WIN32(ERROR_NOT_FOUND)): no such endpoint.
    pub fn is_not_found(&self) -> bool {
        self.hresult == 0x8007_0490_u32 as i32
    }

    /// `AUDCLNT_E_DEVICE_INVALIDATED`: the endpoint was unplugged or disabled.
    pub fn is_device_invalidated(&self) -> bool {
        self.hresult == 0x8889_0004_u32 as i32
    }
}

impl fmt::Display for AudioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} (HRESULT 0x{:08X})",
            self.context, self.message, self.hresult as u32
        )
    }
}

impl std::error::Error for AudioError {}

#[cfg(windows)]
impl AudioError {
    pub(crate) fn from_win(context: impl Into<String>, e: windows::core::Error) -> Self {
        AudioError::new(context, e.code().0, e.message())
    }
}

/// `Result` with [`AudioError`].
pub type AudioResult<T> = Result<T, AudioError>;
