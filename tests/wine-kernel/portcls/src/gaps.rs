//! Kernel functions the driver imports that Wine 8.0 (Debian 12) lacks or stubs, filled by
//! writing the loaded driver image's import address table (IAT) in memory. The `.sys` file
//! on disk stays byte-for-byte the shipped one; only this process's mapped copy changes.
//!
//! Read from Wine 8.0's sources (`dlls/ntoskrnl.exe/ntoskrnl.exe.spec`, `dlls/hal/hal.spec`):
//! - `SeCaptureSubjectContext`, `SeQueryInformationToken`, `SeReleaseSubjectContext`: spec
//!   stubs (calling one raises an exception in winedevice);
//! - `hal!KeStallExecutionProcessor`: a spec stub;
//! - `ExAllocateTimer`, `ExSetTimer`, `ExCancelTimer`, `ExDeleteTimer`: not exported (the
//!   loader binds a stub that raises when called);
//! - `KeFlushQueuedDpcs`: exported, does nothing (Wine has no DPC queue); the fill waits for
//!   the stand-in's timer callbacks, the only DPC-like work here.
//!
//! Where Wine turns out to export a real implementation of an "absent" function, it is left
//! alone and the log says so.

use crate::ddk::extra::*;
use crate::ddk::*;
use crate::win32::{self, *};
use core::ffi::c_void;
use core::ptr::{null_mut, read_unaligned};
use core::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering::*};

/// Why a function needs filling.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Why {
    /// Exported by Wine as a spec stub (raises when called).
    Stub,
    /// Exported, but a no-op where the driver relies on its effect.
    NoOp,
    /// Not exported by Wine at all.
    Absent,
}

struct Gap {
    dll: &'static [u8],
    name: &'static str,
    why: Why,
    fill: usize,
}

macro_rules! gap {
    ($dll:literal, $name:ident, $why:ident, $fill:expr) => {
        Gap {
            dll: $dll,
            name: stringify!($name),
            why: Why::$why,
            fill: $fill as usize,
        }
    };
}

fn gaps() -> [Gap; 9] {
    [
        gap!(
            b"ntoskrnl.exe\0",
            SeCaptureSubjectContext,
            Stub,
            se_capture_subject_context as unsafe extern "C" fn(_)
        ),
        gap!(
            b"ntoskrnl.exe\0",
            SeQueryInformationToken,
            Stub,
            se_query_information_token as unsafe extern "C" fn(_, _, _) -> _
        ),
        gap!(
            b"ntoskrnl.exe\0",
            SeReleaseSubjectContext,
            Stub,
            se_release_subject_context as unsafe extern "C" fn(_)
        ),
        gap!(
            b"hal.dll\0",
            KeStallExecutionProcessor,
            Stub,
            ke_stall_execution_processor as unsafe extern "C" fn(_)
        ),
        gap!(
            b"ntoskrnl.exe\0",
            KeFlushQueuedDpcs,
            NoOp,
            ke_flush_queued_dpcs as unsafe extern "C" fn()
        ),
        gap!(
            b"ntoskrnl.exe\0",
            ExAllocateTimer,
            Absent,
            ex_allocate_timer as unsafe extern "C" fn(_, _, _) -> _
        ),
        gap!(
            b"ntoskrnl.exe\0",
            ExSetTimer,
            Absent,
            ex_set_timer as unsafe extern "C" fn(_, _, _, _) -> _
        ),
        gap!(
            b"ntoskrnl.exe\0",
            ExCancelTimer,
            Absent,
            ex_cancel_timer as unsafe extern "C" fn(_, _) -> _
        ),
        gap!(
            b"ntoskrnl.exe\0",
            ExDeleteTimer,
            Absent,
            ex_delete_timer as unsafe extern "C" fn(_, _, _, _) -> _
        ),
    ]
}

/// Name bytes without the trailing NUL.
fn trim(dll: &[u8]) -> &[u8] {
    dll.strip_suffix(b"\0").unwrap_or(dll)
}

fn eq_ignore_case(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.eq_ignore_ascii_case(y))
}

/// Reads a NUL-terminated string at `p` (at most 256 bytes).
///
/// # Safety
/// `p` points into a mapped image.
unsafe fn c_str<'a>(p: *const u8) -> &'a [u8] {
    let mut n = 0;
    // SAFETY: per the contract; import names are NUL-terminated.
    while n < 256 && unsafe { *p.add(n) } != 0 {
        n += 1;
    }
    // SAFETY: `n` bytes were just read.
    unsafe { core::slice::from_raw_parts(p, n) }
}

/// Fills the gaps in the driver image at `base`; returns how many import slots were written.
///
/// # Safety
/// `base` is the base of a mapped PE32+ image whose imports the loader has resolved.
pub unsafe fn fill(base: *mut u8) -> Result<u32, &'static str> {
    let gaps = gaps();
    // SAFETY: the image's headers are mapped (the loader read them).
    let (imports_rva, imports_size) = unsafe {
        if read_unaligned(base.cast::<u16>()) != 0x5a4d {
            return Err("no MZ header at DriverObject->DriverStart");
        }
        let nt = base.add(read_unaligned(base.add(0x3c).cast::<u32>()) as usize);
        if read_unaligned(nt.cast::<u32>()) != 0x4550 {
            return Err("no PE header");
        }
        // IMAGE_OPTIONAL_HEADER64 starts at +24; DataDirectory[1] (imports) at +120.
        let dir = nt.add(24 + 120);
        (
            read_unaligned(dir.cast::<u32>()) as usize,
            read_unaligned(dir.add(4).cast::<u32>()) as usize,
        )
    };
    if imports_rva == 0 || imports_size == 0 {
        return Err("the driver image has no import directory");
    }
    let mut written = 0;
    let mut descriptor = imports_rva;
    loop {
        // SAFETY: IMAGE_IMPORT_DESCRIPTORs (20 bytes) until an all-zero one.
        let (lookup, name_rva, iat) = unsafe {
            let d = base.add(descriptor);
            (
                read_unaligned(d.cast::<u32>()) as usize,
                read_unaligned(d.add(12).cast::<u32>()) as usize,
                read_unaligned(d.add(16).cast::<u32>()) as usize,
            )
        };
        if name_rva == 0 {
            break;
        }
        // SAFETY: the DLL name is in the image.
        let dll = unsafe { c_str(base.add(name_rva)) };
        let mut i = 0;
        loop {
            // SAFETY: the lookup table is an array of u64 ending with 0.
            let entry = unsafe { read_unaligned(base.add(lookup + 8 * i).cast::<u64>()) };
            if entry == 0 {
                break;
            }
            if entry & (1 << 63) == 0 {
                // SAFETY: IMAGE_IMPORT_BY_NAME: hint (u16) then the name.
                let name = unsafe { c_str(base.add(entry as usize + 2)) };
                for gap in gaps.iter() {
                    if eq_ignore_case(dll, trim(gap.dll)) && name == gap.name.as_bytes() {
                        // SAFETY: slot `i` of this descriptor's IAT.
                        if unsafe { fill_slot(base.add(iat + 8 * i).cast::<usize>(), gap) } {
                            written += 1;
                        }
                    }
                }
            }
            i += 1;
        }
        descriptor += 20;
    }
    Ok(written)
}

/// # Safety
/// `slot` is an IAT entry of the mapped driver image.
unsafe fn fill_slot(slot: *mut usize, gap: &Gap) -> bool {
    // SAFETY: both strings are NUL-terminated; the module is loaded (the driver imports it).
    let exported = unsafe {
        let mut name = [0u8; 64];
        name[..gap.name.len()].copy_from_slice(gap.name.as_bytes());
        GetProcAddress(GetModuleHandleA(gap.dll.as_ptr()), name.as_ptr())
    };
    let dll = core::str::from_utf8(trim(gap.dll)).unwrap_or("?");
    if gap.why == Why::Absent && !exported.is_null() {
        say!(
            "gap: {dll}!{} is exported by this Wine (assumed absent): left alone",
            gap.name
        );
        return false;
    }
    let why = match gap.why {
        Why::Stub => "a stub in Wine 8.0",
        Why::NoOp => "a no-op in Wine 8.0",
        Why::Absent => "absent from Wine 8.0",
    };
    let mut old = 0u32;
    // SAFETY: one pointer-sized slot; protection restored below.
    unsafe {
        if VirtualProtect(slot.cast(), 8, PAGE_READWRITE, &mut old) == 0 {
            say!(
                "gap: {dll}!{}: VirtualProtect failed ({})",
                gap.name,
                GetLastError()
            );
            return false;
        }
        let before = slot.read_volatile();
        slot.write_volatile(gap.fill);
        VirtualProtect(slot.cast(), 8, old, &mut old);
        say!(
            "gap filled: {dll}!{} ({why}): import slot {:#x} -> stand-in {:#x}",
            gap.name,
            before,
            gap.fill
        );
    }
    true
}

// ---- Se*: the caller's identity ----------------------------------------------------------

/// The only token the fills hand out: winedevice's own process token. Wine runs every
/// process of a prefix as the one Unix user, so this is also the IOCTL caller's user.
static TOKEN_MARKER: u8 = 0;
pub static SE_QUERIES: AtomicU32 = AtomicU32::new(0);

unsafe extern "C" fn se_capture_subject_context(ctx: PSECURITY_SUBJECT_CONTEXT) {
    // SAFETY: the driver passes its own context struct.
    unsafe {
        (*ctx).ClientToken = null_mut();
        (*ctx).ImpersonationLevel = 0;
        (*ctx).PrimaryToken = (&TOKEN_MARKER as *const u8).cast_mut().cast();
        (*ctx).ProcessAuditId = null_mut();
    }
}

unsafe extern "C" fn se_release_subject_context(_ctx: PSECURITY_SUBJECT_CONTEXT) {}

/// `SeQueryInformationToken(TokenUser)`: a pool allocation holding TOKEN_USER (the caller
/// frees it with ExFreePool), as the WDK documents
/// (https://learn.microsoft.com/windows-hardware/drivers/ddi/ntifs/nf-ntifs-sequeryinformationtoken).
unsafe extern "C" fn se_query_information_token(
    token: PACCESS_TOKEN,
    class: TOKEN_INFORMATION_CLASS,
    out: *mut PVOID,
) -> NTSTATUS {
    const STATUS_INVALID_PARAMETER: NTSTATUS = 0xC000_000Du32 as i32;
    const STATUS_NOT_IMPLEMENTED: NTSTATUS = 0xC000_0002u32 as i32;
    const STATUS_UNSUCCESSFUL: NTSTATUS = 0xC000_0001u32 as i32;
    if out.is_null() || token != (&TOKEN_MARKER as *const u8).cast_mut().cast() {
        return STATUS_INVALID_PARAMETER;
    }
    if class != TOKEN_USER_CLASS {
        return STATUS_NOT_IMPLEMENTED;
    }
    SE_QUERIES.fetch_add(1, Relaxed);
    // SAFETY: our process token, closed below; the buffer is sized by the first call.
    unsafe {
        let mut handle: win32::H = null_mut();
        if OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut handle) == 0 {
            return STATUS_UNSUCCESSFUL;
        }
        let mut len = 0u32;
        GetTokenInformation(handle, 1, null_mut(), 0, &mut len);
        let buf = ExAllocatePoolWithTag(
            NON_PAGED_POOL_NX,
            len as SIZE_T,
            u32::from_le_bytes(*b"HmSe"),
        );
        let ok = !buf.is_null() && GetTokenInformation(handle, 1, buf, len, &mut len) != 0;
        win32::CloseHandle(handle);
        if !ok {
            if !buf.is_null() {
                ExFreePoolWithTag(buf, 0);
            }
            return STATUS_UNSUCCESSFUL;
        }
        *out = buf;
    }
    0
}

// ---- hal!KeStallExecutionProcessor -------------------------------------------------------

unsafe extern "C" fn ke_stall_execution_processor(micros: ULONG) {
    let (start, freq) = qpc();
    let ticks = i64::from(micros) * freq / 1_000_000;
    while qpc().0 - start < ticks {
        core::hint::spin_loop();
    }
}

// ---- Ex*Timer: a thread per timer --------------------------------------------------------

/// Timer callbacks running right now (all timers); `KeFlushQueuedDpcs` waits for zero.
static IN_CALLBACK: AtomicU32 = AtomicU32::new(0);
/// Callbacks run, all timers (for the log and the stage).
pub static TICKS: AtomicU64 = AtomicU64::new(0);

/// The stand-in's `EX_TIMER`: the driver only ever holds a pointer to it.
struct Timer {
    callback: PEXT_CALLBACK,
    context: PVOID,
    /// Next due time and period, in performance-counter ticks (period 0 = one shot).
    due: AtomicI64,
    period: AtomicI64,
    armed: AtomicBool,
    exit: AtomicBool,
    thread_id: AtomicU32,
    thread: core::sync::atomic::AtomicPtr<c_void>,
}

unsafe extern "system" fn timer_thread(param: *mut c_void) -> u32 {
    let t = param.cast::<Timer>();
    // SAFETY: the Timer outlives its thread (ExDeleteTimer waits for the thread).
    let t = unsafe { &*t };
    t.thread_id.store(unsafe { GetCurrentThreadId() }, SeqCst);
    let (_, freq) = qpc();
    while !t.exit.load(SeqCst) {
        if !t.armed.load(SeqCst) {
            // SAFETY: plain sleep.
            unsafe { Sleep(1) };
            continue;
        }
        let now = qpc().0;
        let due = t.due.load(SeqCst);
        if now < due {
            if due - now > freq / 500 {
                // SAFETY: plain sleep.
                unsafe { Sleep(1) };
            } else {
                core::hint::spin_loop();
            }
            continue;
        }
        IN_CALLBACK.fetch_add(1, SeqCst);
        if t.armed.load(SeqCst) {
            if let Some(cb) = t.callback {
                // SAFETY: the driver's EXT_CALLBACK with its context, as ExSetTimer armed it.
                unsafe { cb((t as *const Timer).cast_mut().cast(), t.context) };
                TICKS.fetch_add(1, Relaxed);
            }
        }
        IN_CALLBACK.fetch_sub(1, SeqCst);
        let period = t.period.load(SeqCst);
        if period > 0 {
            let next = due + period;
            // Late by more than 50 periods (a stalled machine): restart from now.
            let next = if now - next > 50 * period {
                now + period
            } else {
                next
            };
            t.due.store(next, SeqCst);
        } else {
            t.armed.store(false, SeqCst);
        }
    }
    0
}

unsafe extern "C" fn ex_allocate_timer(
    callback: PEXT_CALLBACK,
    context: PVOID,
    attributes: ULONG,
) -> PEX_TIMER {
    // SAFETY: pool allocation for the Timer, freed by ExDeleteTimer.
    let t = unsafe {
        ExAllocatePoolWithTag(
            NON_PAGED_POOL_NX,
            core::mem::size_of::<Timer>() as SIZE_T,
            u32::from_le_bytes(*b"HmTm"),
        )
    }
    .cast::<Timer>();
    if t.is_null() {
        return null_mut();
    }
    // SAFETY: fresh allocation of the right size.
    unsafe {
        t.write(Timer {
            callback,
            context,
            due: AtomicI64::new(0),
            period: AtomicI64::new(0),
            armed: AtomicBool::new(false),
            exit: AtomicBool::new(false),
            thread_id: AtomicU32::new(0),
            thread: core::sync::atomic::AtomicPtr::new(null_mut()),
        });
        let h = CreateThread(null_mut(), 0, timer_thread, t.cast(), 0, null_mut());
        if h.is_null() {
            ExFreePoolWithTag(t.cast(), 0);
            return null_mut();
        }
        (*t).thread.store(h, SeqCst);
        // THREAD_PRIORITY_TIME_CRITICAL: the closest a thread gets to a DPC (honoured only
        // as far as Wine and the host scheduler allow).
        SetThreadPriority(h, 15);
    }
    say!(
        "ExAllocateTimer (stand-in): attributes {attributes:#x}, timer {:p}",
        t
    );
    t.cast()
}

/// `ExSetTimer`: DueTime < 0 is relative (100 ns units), Period in 100 ns; returns TRUE if
/// the timer was already set
/// (https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-exsettimer).
unsafe extern "C" fn ex_set_timer(
    timer: PEX_TIMER,
    due_time: LONGLONG,
    period: LONGLONG,
    _parameters: PVOID,
) -> BOOLEAN {
    // SAFETY: a timer from ex_allocate_timer.
    let t = unsafe { &*timer.cast::<Timer>() };
    let (now, freq) = qpc();
    let to_ticks = |hns: i64| hns.saturating_mul(freq) / 10_000_000;
    // Absolute due times (system time) are treated as "now": the driver uses relative ones.
    let due = if due_time < 0 {
        now + to_ticks(-due_time)
    } else {
        now
    };
    let was = t.armed.swap(false, SeqCst);
    t.period.store(to_ticks(period.max(0)), SeqCst);
    t.due.store(due, SeqCst);
    t.armed.store(true, SeqCst);
    BOOLEAN::from(was)
}

unsafe extern "C" fn ex_cancel_timer(timer: PEX_TIMER, _parameters: PVOID) -> BOOLEAN {
    // SAFETY: a timer from ex_allocate_timer.
    let t = unsafe { &*timer.cast::<Timer>() };
    BOOLEAN::from(t.armed.swap(false, SeqCst))
}

/// `ExDeleteTimer(Cancel, Wait)`: with Wait, returns after any running callback finished
/// (https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-exdeletetimer).
unsafe extern "C" fn ex_delete_timer(
    timer: PEX_TIMER,
    cancel: BOOLEAN,
    wait: BOOLEAN,
    _parameters: PVOID,
) -> BOOLEAN {
    let t = timer.cast::<Timer>();
    // SAFETY: a timer from ex_allocate_timer; after the thread exits nobody else uses it.
    unsafe {
        let was = (*t).armed.swap(false, SeqCst);
        let _ = (cancel, wait);
        (*t).exit.store(true, SeqCst);
        let h = (*t).thread.load(SeqCst);
        if (*t).thread_id.load(SeqCst) == GetCurrentThreadId() {
            say!("ExDeleteTimer called from its own callback: timer leaked (not freed)");
            return BOOLEAN::from(was);
        }
        WaitForSingleObject(h, INFINITE);
        win32::CloseHandle(h);
        ExFreePoolWithTag(t.cast(), 0);
        BOOLEAN::from(was)
    }
}

unsafe extern "C" fn ke_flush_queued_dpcs() {
    while IN_CALLBACK.load(SeqCst) != 0 {
        core::hint::spin_loop();
    }
}
