//! `\\.\HardMuteControl`: the driver's control device, IOCTL ABI v1 (client side).
//!
//! The handle is opened for overlapped I/O because REGISTER_BRIDGE must stay pending for as
//! long as the bridge runs; GET_STATE and SET_MUTE wait for their own completion.

use super::feed::{init_header, ring_geometry, RingGeometry, RING_CHANNELS, RING_FRAMES};
use ::windows::core::HSTRING;
use ::windows::Win32::Foundation::{
    CloseHandle, ERROR_ACCESS_DENIED, ERROR_BAD_IMPERSONATION_LEVEL, ERROR_BUSY,
    ERROR_FILE_NOT_FOUND, ERROR_IO_INCOMPLETE, ERROR_IO_PENDING, ERROR_NOT_OWNER,
    ERROR_PATH_NOT_FOUND, GENERIC_READ, GENERIC_WRITE, HANDLE,
};
use ::windows::Win32::Storage::FileSystem::{
    CreateFileW, FILE_FLAG_OVERLAPPED, FILE_SHARE_READ, FILE_SHARE_WRITE, OPEN_EXISTING,
};
use ::windows::Win32::System::Memory::{
    VirtualAlloc, VirtualFree, MEM_COMMIT, MEM_RELEASE, MEM_RESERVE, PAGE_READWRITE,
};
use ::windows::Win32::System::Threading::CreateEventW;
use ::windows::Win32::System::IO::{CancelIoEx, DeviceIoControl, GetOverlappedResult, OVERLAPPED};
use hardmute_backend::BackendError;
use hardmute_core::ring::{RingHeader, SharedRing};
use hardmute_windows_model::ioctl::{
    client, StateReply, IOCTL_HARDMUTE_GET_STATE, IOCTL_HARDMUTE_REGISTER_BRIDGE,
    IOCTL_HARDMUTE_SET_MUTE,
};
use std::sync::atomic::AtomicU32;
use std::sync::Arc;

pub const CONTROL_DEVICE_PATH: &str = r"\\.\HardMuteControl";

fn is_win32(e: &::windows::core::Error, code: ::windows::Win32::Foundation::WIN32_ERROR) -> bool {
    e.code() == code.to_hresult()
}

fn failed(what: &str, e: &::windows::core::Error) -> BackendError {
    BackendError::Failed(format!(
        "{what}: {} (0x{:08X})",
        e.message(),
        e.code().0 as u32
    ))
}

/// An owned Win32 event.
struct Event(HANDLE);

impl Event {
    fn manual() -> ::windows::core::Result<Self> {
        // SAFETY: an unnamed manual-reset event with default security; closed in Drop.
        unsafe { CreateEventW(None, true, false, None) }.map(Event)
    }
}

impl Drop for Event {
    fn drop(&mut self) {
        // SAFETY: we own the handle.
        let _ = unsafe { CloseHandle(self.0) };
    }
}

/// An open handle on the control device.
pub struct ControlDevice {
    handle: HANDLE,
}

// SAFETY: a file handle may be used from any thread; every request carries its own OVERLAPPED.
unsafe impl Send for ControlDevice {}
// SAFETY: as above.
unsafe impl Sync for ControlDevice {}

impl Drop for ControlDevice {
    fn drop(&mut self) {
        // SAFETY: we own the handle; closing it cancels anything still pending on it.
        let _ = unsafe { CloseHandle(self.handle) };
    }
}

impl ControlDevice {
    /// Opens the control device. Absent (driver not installed or not started) is an error:
    /// the backend does not start, so nothing can be unmuted and the driver, if it exists,
    /// keeps delivering zeros.
    pub fn open() -> Result<Self, BackendError> {
        // SAFETY: the HSTRING outlives the call; the handle is owned by the returned value.
        let opened = unsafe {
            CreateFileW(
                &HSTRING::from(CONTROL_DEVICE_PATH),
                (GENERIC_READ | GENERIC_WRITE).0,
                FILE_SHARE_READ | FILE_SHARE_WRITE,
                None,
                OPEN_EXISTING,
                FILE_FLAG_OVERLAPPED,
                None,
            )
        };
        match opened {
            Ok(handle) => Ok(ControlDevice { handle }),
            Err(e) if is_win32(&e, ERROR_FILE_NOT_FOUND) || is_win32(&e, ERROR_PATH_NOT_FOUND) => {
                Err(BackendError::Failed(format!(
                    "the HardMute driver is not running: {CONTROL_DEVICE_PATH} does not exist \
                     (install the driver, or start hardmuted with --backend simulated)"
                )))
            }
            Err(e) if is_win32(&e, ERROR_ACCESS_DENIED) => Err(BackendError::Failed(format!(
                "{CONTROL_DEVICE_PATH} refused this user (only interactive users, \
                 administrators and SYSTEM may open it)"
            ))),
            Err(e) => Err(failed(&format!("opening {CONTROL_DEVICE_PATH}"), &e)),
        }
    }

    /// One IOCTL, waited for. Returns the bytes the driver wrote.
    fn call(&self, code: u32, input: &[u8], output: &mut [u8]) -> ::windows::core::Result<u32> {
        let event = Event::manual()?;
        let mut overlapped = OVERLAPPED {
            hEvent: event.0,
            ..Default::default()
        };
        let mut returned = 0u32;
        // SAFETY: input/output and `overlapped` outlive the request: we wait for its completion
        // below before any of them goes out of scope.
        unsafe {
            match DeviceIoControl(
                self.handle,
                code,
                Some(input.as_ptr().cast()),
                input.len() as u32,
                Some(output.as_mut_ptr().cast()),
                output.len() as u32,
                Some(&mut returned),
                Some(&mut overlapped),
            ) {
                Ok(()) => {}
                Err(e) if is_win32(&e, ERROR_IO_PENDING) => {}
                Err(e) => return Err(e),
            }
            GetOverlappedResult(self.handle, &overlapped, &mut returned, true)?;
        }
        Ok(returned)
    }

    pub fn get_state(&self) -> Result<StateReply, BackendError> {
        let mut out = [0u8; std::mem::size_of::<StateReply>()];
        let n = self
            .call(IOCTL_HARDMUTE_GET_STATE, &client::get_state(), &mut out)
            .map_err(|e| failed("GET_STATE", &e))?;
        client::state_reply(&out[..n as usize]).ok_or_else(|| {
            BackendError::Failed("GET_STATE: the driver answered with another ABI version".into())
        })
    }

    /// Sets the hard mute; returns once the driver acknowledged it (for a mute: once no
    /// realtime cycle can use the old state). Returns the new generation.
    pub fn set_mute(
        &self,
        muted: bool,
        source: hardmute_core::ChangeSource,
    ) -> Result<u64, BackendError> {
        let mut out = [0u8; 16];
        match self.call(
            IOCTL_HARDMUTE_SET_MUTE,
            &client::set_mute(muted, source),
            &mut out,
        ) {
            Ok(n) => client::set_mute_reply(&out[..n as usize]).ok_or_else(|| {
                BackendError::Failed(
                    "SET_MUTE: the driver answered with another ABI version".into(),
                )
            }),
            Err(e) if is_win32(&e, ERROR_ACCESS_DENIED) => Err(BackendError::NotOwner(
                "the driver refused to unmute: the HardMute Microphone belongs to another user \
                 of this PC (the owner recorded at install); anyone may mute it"
                    .into(),
            )),
            Err(e) if is_win32(&e, ERROR_BAD_IMPERSONATION_LEVEL) => Err(BackendError::Failed(
                "the driver refused a borrowed identity (an identification-level token)".into(),
            )),
            Err(e) if is_win32(&e, ERROR_BUSY) => Err(BackendError::Failed(
                "the mute is set, but the driver could not confirm within 20 ms that no audio \
                 cycle still uses the old state"
                    .into(),
            )),
            Err(e) => Err(failed("SET_MUTE", &e)),
        }
    }
}

/// The bridge ring, registered with the driver by a REGISTER_BRIDGE request that stays
/// pending. Dropping it cancels the request, waits until the driver completed it (the pages are
/// unlocked then) and only then frees the memory.
pub struct BridgeRegistration {
    device: Arc<ControlDevice>,
    memory: *mut core::ffi::c_void,
    geometry: RingGeometry,
    // Boxed: the kernel holds this address until the request completes.
    overlapped: Box<OVERLAPPED>,
    _event: Event,
}

// SAFETY: the memory is ours until Drop; the ring in it is made of atomics; the OVERLAPPED is
// only touched through Win32 calls that are thread-safe.
unsafe impl Send for BridgeRegistration {}
// SAFETY: as above.
unsafe impl Sync for BridgeRegistration {}

impl BridgeRegistration {
    pub fn register(device: Arc<ControlDevice>) -> Result<Self, BackendError> {
        let geometry = ring_geometry(RING_FRAMES, RING_CHANNELS);
        // SAFETY: a fresh private read/write allocation, zeroed and page aligned, freed in Drop
        // (or below on failure).
        let memory = unsafe {
            VirtualAlloc(
                None,
                geometry.bytes,
                MEM_COMMIT | MEM_RESERVE,
                PAGE_READWRITE,
            )
        };
        if memory.is_null() {
            return Err(BackendError::Failed(format!(
                "VirtualAlloc of the {} byte bridge ring failed",
                geometry.bytes
            )));
        }
        let event = match Event::manual() {
            Ok(event) => event,
            Err(e) => {
                // SAFETY: the allocation above, never shared.
                let _ = unsafe { VirtualFree(memory, 0, MEM_RELEASE) };
                return Err(failed("CreateEventW", &e));
            }
        };
        let mut registration = BridgeRegistration {
            device,
            memory,
            geometry,
            overlapped: Box::new(OVERLAPPED {
                hEvent: event.0,
                ..Default::default()
            }),
            _event: event,
        };
        init_header(registration.header(), geometry);
        let input = client::register_bridge(RING_CHANNELS as u32);
        // SAFETY: the output buffer (the ring) and the OVERLAPPED live in `registration`, which
        // cancels and waits for the request before freeing either (Drop).
        let sent = unsafe {
            DeviceIoControl(
                registration.device.handle,
                IOCTL_HARDMUTE_REGISTER_BRIDGE,
                Some(input.as_ptr().cast()),
                input.len() as u32,
                Some(memory),
                geometry.bytes as u32,
                None,
                Some(&mut *registration.overlapped),
            )
        };
        match sent {
            // Pending: the driver attached the ring and holds the request.
            Err(e) if is_win32(&e, ERROR_IO_PENDING) => Ok(registration),
            Ok(()) => Err(BackendError::Failed(
                "REGISTER_BRIDGE completed at once: the driver did not keep the ring".into(),
            )),
            Err(e) if is_win32(&e, ERROR_NOT_OWNER) => Err(BackendError::NotOwner(
                "the driver refused the bridge: the HardMute Microphone belongs to another user \
                 of this PC (the owner recorded at install, or without one the first user to \
                 register since the driver loaded)"
                    .into(),
            )),
            Err(e) if is_win32(&e, ERROR_ACCESS_DENIED) => Err(BackendError::Failed(
                "the driver refused the bridge (access denied)".into(),
            )),
            Err(e) if is_win32(&e, ERROR_BUSY) => Err(BackendError::Failed(
                "the driver refused the bridge: another hardmuted is already feeding it".into(),
            )),
            Err(e) => Err(failed("REGISTER_BRIDGE", &e)),
        }
    }

    fn header(&self) -> &RingHeader {
        // SAFETY: the allocation is at least MIN_RING_BYTES, page aligned and zero-initialised;
        // RingHeader is all atomics, valid for any bit pattern; it lives as long as `self`.
        unsafe { &*self.memory.cast::<RingHeader>() }
    }

    /// The ring in the registered memory.
    pub fn ring(&self) -> Option<SharedRing<'_>> {
        let header_bytes = std::mem::size_of::<RingHeader>();
        let slots = (self.geometry.bytes - header_bytes) / 4;
        // SAFETY: the slots follow the 32-byte header inside the allocation (4-byte aligned,
        // zero-initialised atomics), living as long as `self`.
        let storage = unsafe {
            std::slice::from_raw_parts(
                self.memory
                    .cast::<u8>()
                    .add(header_bytes)
                    .cast::<AtomicU32>(),
                slots,
            )
        };
        SharedRing::attach(self.header(), storage).ok()
    }

    /// Whether the driver still holds the request (false: it dropped the bridge, e.g. on
    /// driver stop, and the ring is no longer read).
    pub fn is_pending(&self) -> bool {
        let mut n = 0u32;
        // SAFETY: our handle and OVERLAPPED; no wait.
        match unsafe { GetOverlappedResult(self.device.handle, &*self.overlapped, &mut n, false) } {
            Err(e) => is_win32(&e, ERROR_IO_INCOMPLETE),
            Ok(()) => false,
        }
    }
}

impl Drop for BridgeRegistration {
    fn drop(&mut self) {
        let mut n = 0u32;
        // SAFETY: cancels our own request, then waits for its completion: afterwards the
        // kernel no longer references the OVERLAPPED or the (unlocked) ring pages, which are
        // freed last.
        unsafe {
            let _ = CancelIoEx(self.device.handle, Some(&*self.overlapped));
            let _ = GetOverlappedResult(self.device.handle, &*self.overlapped, &mut n, true);
            let _ = VirtualFree(self.memory, 0, MEM_RELEASE);
        }
    }
}
