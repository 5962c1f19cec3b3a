//! The DDK's inline helpers and macros (IoGetCurrentIrpStackLocation, IoSetCancelRoutine,
//! MmGetSystemAddressForMdlSafe, ...) and field paths through bindgen's anonymous unions.
//! Kept in one place: the anonymous-union names are the only binding-source-specific part
//! of the driver, so a WDK header difference shows up here and nowhere else.

use super::extra::*;
use super::*;
use core::ptr::{addr_of_mut, null_mut};
use core::sync::atomic::{AtomicUsize, Ordering};

/// `IoGetCurrentIrpStackLocation`.
///
/// # Safety
/// `irp` is a valid IRP owned by the caller's dispatch routine.
pub unsafe fn current_stack(irp: PIRP) -> *mut IO_STACK_LOCATION {
    // SAFETY: per the contract; the union member is the one the I/O manager maintains for
    // an IRP being dispatched.
    unsafe {
        (*irp)
            .Tail
            .Overlay
            .__bindgen_anon_2
            .__bindgen_anon_1
            .CurrentStackLocation
    }
}

/// `Irp->AssociatedIrp.SystemBuffer` (METHOD_BUFFERED and the input of METHOD_OUT_DIRECT).
///
/// # Safety
/// As for [`current_stack`].
pub unsafe fn system_buffer(irp: PIRP) -> *mut u8 {
    // SAFETY: per the contract.
    unsafe { (*irp).AssociatedIrp.SystemBuffer.cast() }
}

/// (IoControlCode, InputBufferLength, OutputBufferLength) of an IRP_MJ_DEVICE_CONTROL.
///
/// # Safety
/// `stack` is the current stack location of a device-control IRP.
pub unsafe fn ioctl_parameters(stack: *const IO_STACK_LOCATION) -> (u32, usize, usize) {
    // SAFETY: per the contract, DeviceIoControl is the active union member.
    let p = unsafe { &(*stack).Parameters.DeviceIoControl };
    (
        p.IoControlCode,
        p.InputBufferLength as usize,
        p.OutputBufferLength as usize,
    )
}

/// Sets the IRP's final status and completes it.
///
/// # Safety
/// The caller owns `irp` (not pended elsewhere, cancel routine cleared).
pub unsafe fn complete(irp: PIRP, status: NTSTATUS, information: usize) {
    // SAFETY: per the contract.
    unsafe {
        (*irp).IoStatus.__bindgen_anon_1.Status = status;
        (*irp).IoStatus.Information = information as ULONG_PTR;
        IofCompleteRequest(irp, IO_NO_INCREMENT);
    }
}

/// `IoMarkIrpPending`.
///
/// # Safety
/// As for [`current_stack`].
pub unsafe fn mark_pending(irp: PIRP) {
    // SAFETY: per the contract.
    unsafe { (*current_stack(irp)).Control |= SL_PENDING_RETURNED };
}

pub type CancelRoutine = unsafe extern "C" fn(device: PDEVICE_OBJECT, irp: PIRP);

/// `IoSetCancelRoutine`: atomically swaps the cancel routine, returning the previous one
/// (None when the I/O manager has already taken it to cancel the IRP).
///
/// # Safety
/// `irp` is valid and owned by this driver.
pub unsafe fn set_cancel_routine(irp: PIRP, routine: Option<CancelRoutine>) -> bool {
    let new = routine.map_or(0, |f| f as usize);
    // SAFETY: `CancelRoutine` is a pointer-sized, pointer-aligned field the I/O manager also
    // accesses with interlocked operations; viewing it as an AtomicUsize matches that.
    let slot = unsafe { AtomicUsize::from_ptr(addr_of_mut!((*irp).CancelRoutine).cast::<usize>()) };
    slot.swap(new, Ordering::SeqCst) != 0
}

/// `Irp->Cancel`.
///
/// # Safety
/// `irp` is valid.
pub unsafe fn is_cancelled(irp: PIRP) -> bool {
    // SAFETY: per the contract; a volatile read as the I/O manager sets it asynchronously.
    unsafe { core::ptr::read_volatile(addr_of_mut!((*irp).Cancel)) != 0 }
}

/// `MmGetSystemAddressForMdlSafe(Mdl, NormalPagePriority | MdlMappingNoExecute)`.
///
/// # Safety
/// `mdl` describes locked pages (e.g. `Irp->MdlAddress` of a METHOD_OUT_DIRECT request).
pub unsafe fn mdl_system_address(mdl: PMDL) -> *mut u8 {
    // SAFETY: per the contract.
    unsafe {
        if (*mdl).MdlFlags & (MDL_MAPPED_TO_SYSTEM_VA | MDL_SOURCE_IS_NONPAGED_POOL) != 0 {
            (*mdl).MappedSystemVa.cast()
        } else {
            MmMapLockedPagesSpecifyCache(
                mdl,
                KERNEL_MODE,
                MM_CACHED,
                null_mut(),
                0,
                NORMAL_PAGE_PRIORITY_NX as _,
            )
            .cast()
        }
    }
}

/// `MmGetMdlByteCount`.
///
/// # Safety
/// `mdl` is valid.
pub unsafe fn mdl_byte_count(mdl: PMDL) -> usize {
    // SAFETY: per the contract.
    unsafe { (*mdl).ByteCount as usize }
}

/// QPC now and its frequency.
pub fn qpc() -> (u64, u64) {
    let mut freq = LARGE_INTEGER { QuadPart: 0 };
    // SAFETY: KeQueryPerformanceCounter only writes the frequency out-parameter; callable at
    // any IRQL.
    let now = unsafe { KeQueryPerformanceCounter(&mut freq) };
    // SAFETY: QuadPart is valid for every bit pattern of the union.
    unsafe { (now.QuadPart as u64, freq.QuadPart as u64) }
}

/// A counted `UNICODE_STRING` over a static, NUL-terminated UTF-16 array.
pub fn unicode_string(s: &'static [u16]) -> UNICODE_STRING {
    let len = s.iter().position(|&c| c == 0).unwrap_or(s.len());
    UNICODE_STRING {
        Length: (len * 2) as USHORT,
        MaximumLength: (s.len() * 2) as USHORT,
        Buffer: s.as_ptr().cast_mut(),
    }
}

/// ASCII -> NUL-terminated UTF-16 at compile time (`N` = length + 1).
pub const fn wide<const N: usize>(s: &str) -> [u16; N] {
    let b = s.as_bytes();
    assert!(b.len() + 1 == N, "N must be the string length + 1");
    let mut out = [0u16; N];
    let mut i = 0;
    while i < b.len() {
        assert!(b[i] < 0x80, "ASCII only");
        out[i] = b[i] as u16;
        i += 1;
    }
    out
}

/// A DDK `GUID` from the model's `Guid` (identical layout, asserted in `layout.rs`).
pub const fn guid(g: hardmute_windows_model::guid::Guid) -> GUID {
    GUID {
        Data1: g.data1 as _,
        Data2: g.data2,
        Data3: g.data3,
        Data4: g.data4,
    }
}

pub fn guid_eq(a: &GUID, b: &GUID) -> bool {
    a.Data1 == b.Data1 && a.Data2 == b.Data2 && a.Data3 == b.Data3 && a.Data4 == b.Data4
}
