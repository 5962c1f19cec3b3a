//! The bridge ring as shared memory under Wine (test-only hook, logged as `hook applied:`).
//!
//! On Windows the bridge's ring is the output buffer of a METHOD_OUT_DIRECT REGISTER_BRIDGE
//! request: the I/O manager locks the daemon's pages and the driver maps them through the MDL,
//! so the driver reads the very memory the daemon writes. Wine copies such a buffer into
//! winedevice and builds the MDL over that private copy (`dispatch_ioctl` in Wine's
//! `ntoskrnl.c`: `IoAllocateMdl(out_buff)`, `MDL_MAPPED_TO_SYSTEM_VA`, `MappedSystemVa =
//! out_buff`), so nothing the bridge writes later reaches the driver.
//!
//! The driver gets the ring's address from the MDL (`mdl_system_address` in
//! driver/windows/kernel/src/ddk/access.rs): `MappedSystemVa` when `MDL_MAPPED_TO_SYSTEM_VA` is set,
//! else `MmMapLockedPagesSpecifyCache`. Wine always sets the flag, so the driver never calls
//! that import here and an import-table fill could not reach it. The hook therefore sits one
//! step earlier, in the driver object's IRP_MJ_DEVICE_CONTROL entry (written in this
//! process's memory, like the gap fills; the `.sys` file is untouched): for REGISTER_BRIDGE it
//! creates the named section [`RING_SECTION`] of the buffer's length, copies Wine's private
//! copy into it (the header the bridge initialised) and points the MDL's `MappedSystemVa` at
//! the section's view, then calls the driver's own dispatch routine. The bridge process maps
//! the same section and writes the ring there with the daemon's ring-writer code
//! (tests/wine-kernel/probe). The driver's validation, attach, timer reads, detach and cancel
//! are its own; only the mapping is replaced.
//!
//! Installed by PcAddAdapterDevice (the PnP run only: the service-only rows test the request
//! with Wine's own copy).

use crate::ddk::access::*;
use crate::ddk::extra::*;
use crate::ddk::*;
use crate::win32::{self, *};
use core::ptr::null_mut;
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering::*};
use hardmute_windows_model::ioctl::IOCTL_HARDMUTE_REGISTER_BRIDGE;

/// The ring's named section (the probe's `RING_SECTION` is the same name).
pub const RING_SECTION: &[u8] = b"Global\\HardMuteWineBridgeRing\0";

/// The driver's own IRP_MJ_DEVICE_CONTROL routine.
static ORIGINAL: AtomicUsize = AtomicUsize::new(0);
/// REGISTER_BRIDGE requests whose mapping was replaced.
pub static APPLIED: AtomicU32 = AtomicU32::new(0);
/// The section view the driver reads the ring from (kept mapped until winedevice exits).
pub static VIEW: AtomicPtr<u8> = AtomicPtr::new(null_mut());

type Dispatch = unsafe extern "C" fn(PDEVICE_OBJECT, PIRP) -> NTSTATUS;

/// Wraps the driver's IRP_MJ_DEVICE_CONTROL routine (once).
///
/// # Safety
/// `driver` is the driver object, after DriverEntry returned.
pub unsafe fn install(driver: PDRIVER_OBJECT) {
    // SAFETY: the driver object is live; the table is plain data in this process.
    let slot = unsafe { &mut (*driver).MajorFunction[IRP_MJ_DEVICE_CONTROL] };
    let Some(original) = *slot else {
        say!("hook: the driver has no IRP_MJ_DEVICE_CONTROL routine: not installed");
        return;
    };
    if original as usize == hooked_dispatch as *const () as usize {
        return;
    }
    ORIGINAL.store(original as usize, SeqCst);
    *slot = Some(hooked_dispatch);
    say!(
        "hook installed: IRP_MJ_DEVICE_CONTROL {:#x} -> stand-in {:#x} (REGISTER_BRIDGE's MDL mapping is replaced by a view of the named section Global\\HardMuteWineBridgeRing)",
        original as usize,
        hooked_dispatch as *const () as usize
    );
}

unsafe extern "C" fn hooked_dispatch(device: PDEVICE_OBJECT, irp: PIRP) -> NTSTATUS {
    // SAFETY: a device-control IRP from Wine's I/O manager.
    let (code, _, out_len) = unsafe { ioctl_parameters(current_stack(irp)) };
    if code == IOCTL_HARDMUTE_REGISTER_BRIDGE {
        // SAFETY: as above; MdlAddress is Wine's MDL for the output buffer (or null).
        unsafe { redirect((*irp).MdlAddress, out_len) };
    }
    // SAFETY: the driver's own routine, saved by `install`.
    let original: Dispatch = unsafe { core::mem::transmute(ORIGINAL.load(SeqCst)) };
    // SAFETY: forwarded dispatch contract.
    unsafe { original(device, irp) }
}

/// # Safety
/// `mdl` is null or Wine's MDL for a REGISTER_BRIDGE output buffer.
unsafe fn redirect(mdl: PMDL, out_len: usize) {
    if mdl.is_null() || out_len == 0 {
        return;
    }
    // SAFETY: Wine's MDL (mapped to a system VA: its private copy of the buffer).
    let (flags, copy, len) = unsafe {
        (
            (*mdl).MdlFlags,
            (*mdl).MappedSystemVa.cast::<u8>(),
            (*mdl).ByteCount as usize,
        )
    };
    if flags & MDL_MAPPED_TO_SYSTEM_VA == 0 || copy.is_null() || len == 0 {
        say!("hook: REGISTER_BRIDGE MDL not mapped by Wine (flags {flags:#x}): left alone");
        return;
    }
    // SAFETY: a pagefile-backed named section of `len` bytes; the handle and the view stay
    // open for winedevice's lifetime (the driver may read the ring until it is detached).
    let view = unsafe {
        let section = CreateFileMappingA(
            win32::INVALID_HANDLE,
            null_mut(),
            PAGE_READWRITE,
            0,
            len as u32,
            RING_SECTION.as_ptr(),
        );
        if section.is_null() {
            say!("hook: CreateFileMappingA failed ({})", GetLastError());
            return;
        }
        let view = MapViewOfFile(section, FILE_MAP_ALL_ACCESS, 0, 0, len).cast::<u8>();
        if view.is_null() {
            say!("hook: MapViewOfFile failed ({})", GetLastError());
            return;
        }
        core::ptr::copy_nonoverlapping(copy, view, len);
        (*mdl).MappedSystemVa = view.cast();
        view
    };
    VIEW.store(view, SeqCst);
    let n = APPLIED.fetch_add(1, SeqCst) + 1;
    say!(
        "hook applied: REGISTER_BRIDGE #{n}: MDL MappedSystemVa {:p} (Wine's private copy, {len} bytes) -> view {:p} of section Global\\HardMuteWineBridgeRing",
        copy,
        view
    );
}
