//! The control device (`\\.\HardMuteControl`): IOCTLs from the user's daemon, the hard-mute
//! control block, and the bridge ring handed over by a pending METHOD_OUT_DIRECT IRP.
//!
//! Bridge lifetime: REGISTER_BRIDGE's output buffer is probed and locked by the I/O
//! manager (`Irp->MdlAddress`); the driver maps it, validates it as a `SharedRing`,
//! publishes it to the timer callback and keeps the IRP pending. When the handle is
//! cleaned up or the IRP is cancelled (the bridge process died), the ring is unpublished,
//! the driver waits until no timer callback is inside it, and only then completes the IRP,
//! which unlocks the pages. From then on the callback delivers zeros (fail closed).

use crate::ddk::access::*;
use crate::ddk::extra::*;
use crate::ddk::*;
use crate::pool::{self, SpinLock};
use core::ptr::{null_mut, read_volatile};
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, Ordering::*};
use hardmute_core::control::ControlBlock;
use hardmute_core::ring::{RingHeader, RingReader, SharedRing};
use hardmute_windows_model::ioctl::*;
use hardmute_windows_model::security::CONTROL_DEVICE_SD;
use hardmute_windows_model::status::*;

/// The hard-mute state. A fresh driver starts muted; the user's daemon restores the
/// persisted state (only it, as the owner, can unmute).
static CONTROL: ControlBlock = ControlBlock::new(true);
/// Replaced once in `create_control_device` by the owner the installer recorded, if any.
static POLICY: SpinLock<ControlPolicy> = SpinLock::new(ControlPolicy::new());
static CONTROL_DEVICE: AtomicPtr<DEVICE_OBJECT> = AtomicPtr::new(null_mut());

/// The published bridge ring and its pending IRP.
struct BridgeRing {
    ring: SharedRing<'static>,
    channels: usize,
    handle: HandleId,
}
static BRIDGE: AtomicPtr<BridgeRing> = AtomicPtr::new(null_mut());
static BRIDGE_IRP: AtomicPtr<IRP> = AtomicPtr::new(null_mut());
/// Timer callbacks currently inside `with_bridge`.
static BRIDGE_USERS: AtomicU32 = AtomicU32::new(0);

/// Facts about the open capture stream for GET_STATE.
static STREAM_OPEN: AtomicBool = AtomicBool::new(false);
static STREAM_RUNNING: AtomicBool = AtomicBool::new(false);
static STREAM_RATE: AtomicU32 = AtomicU32::new(0);
static STREAM_CHANNELS: AtomicU32 = AtomicU32::new(0);

static DEVICE_NAME: [u16; 24] = wide("\\Device\\HardMuteControl");
static LINK_NAME: [u16; 28] = wide("\\DosDevices\\HardMuteControl");
static OWNER_VALUE_NAME: [u16; 9] = wide(OWNER_SID_VALUE);

pub fn control_block() -> &'static ControlBlock {
    &CONTROL
}

pub fn stream_opened(rate: u32, channels: u16) {
    STREAM_RATE.store(rate, Relaxed);
    STREAM_CHANNELS.store(u32::from(channels), Relaxed);
    STREAM_OPEN.store(true, Release);
}
pub fn stream_running(running: bool) {
    STREAM_RUNNING.store(running, Release);
}
pub fn stream_closed() {
    STREAM_OPEN.store(false, Release);
    STREAM_RUNNING.store(false, Release);
}

/// Runs `f` with the bridge ring if one is published (timer callback, DISPATCH_LEVEL).
/// Lock-free: a counter tells `detach_bridge` to wait until we are out.
pub fn with_bridge<R>(f: impl FnOnce(Option<(&mut RingReader<'static>, usize)>) -> R) -> R {
    BRIDGE_USERS.fetch_add(1, SeqCst);
    let bridge = BRIDGE.load(SeqCst);
    let r = if bridge.is_null() {
        f(None)
    } else {
        // SAFETY: `detach_bridge` unpublishes the pointer and waits for BRIDGE_USERS to reach
        // zero before freeing it or unlocking the ring's pages; we incremented first.
        let b = unsafe { &*bridge };
        let mut reader = b.ring.reader();
        f(Some((&mut reader, b.channels)))
    };
    BRIDGE_USERS.fetch_sub(1, SeqCst);
    r
}

/// Unpublishes the bridge ring, waits out the timer callback, frees it and ends the
/// ownership of its handle. Idempotent.
fn detach_bridge() {
    let bridge = BRIDGE.swap(null_mut(), SeqCst);
    if bridge.is_null() {
        return;
    }
    while BRIDGE_USERS.load(SeqCst) != 0 {
        // SAFETY: busy-wait a few microseconds for a callback on another CPU.
        unsafe { KeStallExecutionProcessor(5) };
    }
    // SAFETY: unpublished and no callback is inside; allocated by `attach_bridge`.
    let handle = unsafe { (*bridge).handle };
    POLICY.with(|p| p.handle_closed(handle));
    // SAFETY: as above.
    unsafe { pool::free(bridge, pool::TAG_BRIDGE) };
}

pub fn is_control_device(device: PDEVICE_OBJECT) -> bool {
    !device.is_null() && device == CONTROL_DEVICE.load(Acquire)
}

/// The owner's user SID from the `OwnerSid` REG_BINARY value of the service key (written by
/// the installer), or None (development install: the first registrant binds).
///
/// # Safety
/// PASSIVE_LEVEL; `registry_path` is DriverEntry's.
unsafe fn recorded_owner(registry_path: PUNICODE_STRING) -> Option<UserSid> {
    if registry_path.is_null() {
        return None;
    }
    // SAFETY: a zeroed OBJECT_ATTRIBUTES is valid once its fields are set below.
    let mut attrs: _OBJECT_ATTRIBUTES = unsafe { core::mem::zeroed() };
    attrs.Length = core::mem::size_of::<_OBJECT_ATTRIBUTES>() as ULONG;
    attrs.ObjectName = registry_path;
    attrs.Attributes = OBJ_KERNEL_HANDLE | OBJ_CASE_INSENSITIVE;
    let mut key: HANDLE = null_mut();
    // SAFETY: valid attributes naming our service key; read-only access.
    if !nt_success(unsafe { ZwOpenKey(&mut key, KEY_QUERY_VALUE, &mut attrs) }) {
        return None;
    }
    let mut name = unicode_string(&OWNER_VALUE_NAME);
    // KEY_VALUE_PARTIAL_INFORMATION: 12 header bytes + at most a 68-byte SID; u32-aligned.
    let mut info = [0u32; 24];
    let mut got: ULONG = 0;
    // SAFETY: `info` is writable for its size; `key` was opened above.
    let status = unsafe {
        ZwQueryValueKey(
            key,
            &mut name,
            KEY_VALUE_PARTIAL_INFORMATION_CLASS,
            info.as_mut_ptr().cast(),
            core::mem::size_of_val(&info) as ULONG,
            &mut got,
        )
    };
    // SAFETY: closes the key opened above.
    unsafe { ZwClose(key) };
    if !nt_success(status) || info[1] != REG_BINARY {
        return None;
    }
    let len = (info[2] as usize).min(MAX_SID_BYTES);
    let bytes: &[u8] = &info_bytes(&info)[12..12 + len];
    UserSid::from_bytes(bytes).filter(|sid| sid.as_bytes().len() == len)
}

fn info_bytes(info: &[u32; 24]) -> [u8; 96] {
    let mut out = [0u8; 96];
    for (chunk, word) in out.chunks_exact_mut(4).zip(info) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    out
}

/// Creates `\Device\HardMuteControl`, applies the DACL, links `\DosDevices\HardMuteControl`,
/// and binds the owner the installer recorded in the service key.
///
/// # Safety
/// Called once from DriverEntry at PASSIVE_LEVEL with the driver object and registry path.
pub unsafe fn create_control_device(
    driver: PDRIVER_OBJECT,
    registry_path: PUNICODE_STRING,
) -> NTSTATUS {
    // SAFETY: forwarded contract.
    if let Some(owner) = unsafe { recorded_owner(registry_path) } {
        POLICY.with(|p| *p = ControlPolicy::with_recorded_owner(owner));
        klog!(info, "control: owner recorded at install bound (OwnerSid)");
    }
    let mut name = unicode_string(&DEVICE_NAME);
    let mut link = unicode_string(&LINK_NAME);
    let mut device: PDEVICE_OBJECT = null_mut();
    // SAFETY: valid driver object and names; exclusive = FALSE (the daemon and the CLI may
    // both hold handles).
    let status = unsafe {
        IoCreateDevice(
            driver,
            0,
            &mut name,
            crate::ddk::extra::FILE_DEVICE_UNKNOWN,
            FILE_DEVICE_SECURE_OPEN,
            0,
            &mut device,
        )
    };
    if !nt_success(status) {
        klog!(error, "control: IoCreateDevice failed: {status:#x}");
        return status;
    }
    // SAFETY: `device` was just created; the security descriptor is static, self-relative.
    let status = unsafe { apply_security(device) };
    if !nt_success(status) {
        klog!(
            error,
            "control: setting the device's DACL failed: {status:#x}"
        );
        // SAFETY: created above, not yet visible to user mode.
        unsafe { IoDeleteDevice(device) };
        return status;
    }
    // SAFETY: valid names.
    let status = unsafe { IoCreateSymbolicLink(&mut link, &mut name) };
    if !nt_success(status) {
        klog!(error, "control: IoCreateSymbolicLink failed: {status:#x}");
        // SAFETY: as above.
        unsafe { IoDeleteDevice(device) };
        return status;
    }
    // SAFETY: our device object; clearing the flag lets opens through.
    unsafe { (*device).Flags &= !DO_DEVICE_INITIALIZING };
    CONTROL_DEVICE.store(device, Release);
    STATUS_SUCCESS
}

/// # Safety
/// `device` is a device object this driver created.
unsafe fn apply_security(device: PDEVICE_OBJECT) -> NTSTATUS {
    let mut handle: HANDLE = null_mut();
    // SAFETY: kernel handle to our own device, WRITE_DAC only.
    let status = unsafe {
        ObOpenObjectByPointer(
            device.cast(),
            OBJ_KERNEL_HANDLE,
            null_mut(),
            WRITE_DAC,
            null_mut(),
            KERNEL_MODE,
            &mut handle,
        )
    };
    if !nt_success(status) {
        return status;
    }
    // SAFETY: valid handle; the descriptor bytes are a valid self-relative SD (model test).
    let status = unsafe {
        ZwSetSecurityObject(
            handle,
            DACL_SECURITY_INFORMATION,
            CONTROL_DEVICE_SD.as_ptr().cast_mut().cast(),
        )
    };
    // SAFETY: closes the handle opened above.
    unsafe { ZwClose(handle) };
    status
}

/// # Safety
/// Called from DriverUnload at PASSIVE_LEVEL.
pub unsafe fn delete_control_device() {
    let device = CONTROL_DEVICE.swap(null_mut(), AcqRel);
    if device.is_null() {
        return;
    }
    detach_bridge();
    let mut link = unicode_string(&LINK_NAME);
    // SAFETY: the link and device were created by create_control_device.
    unsafe {
        IoDeleteSymbolicLink(&mut link);
        IoDeleteDevice(device);
    }
}

/// IRP dispatch for the control device.
///
/// # Safety
/// `irp` was sent to the control device; `major` is its major function.
pub unsafe fn dispatch(major: usize, irp: PIRP) -> NTSTATUS {
    match major {
        // SAFETY: forwarded contract.
        IRP_MJ_DEVICE_CONTROL => unsafe { dispatch_ioctl(irp) },
        IRP_MJ_CLEANUP => {
            // SAFETY: forwarded contract.
            unsafe { cleanup(irp) };
            STATUS_SUCCESS
        }
        // CREATE and CLOSE: the DACL already decided who gets here.
        _ => {
            // SAFETY: we own the IRP.
            unsafe { complete(irp, STATUS_SUCCESS, 0) };
            STATUS_SUCCESS
        }
    }
}

/// The caller behind the IRP: the token user of the thread sending it (dispatch runs in the
/// caller's context: the control device is not layered). An impersonation token counts only at
/// SecurityImpersonation or above (`caller_identity` decides; an identification-level token is
/// someone else's identity to look at, not to use).
fn caller_of(handle: HandleId) -> Result<Caller, NTSTATUS> {
    // SAFETY: a zeroed SECURITY_SUBJECT_CONTEXT is what SeCaptureSubjectContext fills.
    let mut ctx: SECURITY_SUBJECT_CONTEXT = unsafe { core::mem::zeroed() };
    let mut info: PVOID = null_mut();
    // SAFETY: PASSIVE_LEVEL, captured context released below; SeQueryInformationToken
    // allocates `info`, freed below.
    let (status, kind) = unsafe {
        SeCaptureSubjectContext(&mut ctx);
        let (token, kind) = if ctx.ClientToken.is_null() {
            (ctx.PrimaryToken, SubjectToken::Primary)
        } else {
            (
                ctx.ClientToken,
                SubjectToken::Impersonation(ctx.ImpersonationLevel as u32),
            )
        };
        let status = SeQueryInformationToken(token, TOKEN_USER_CLASS, &mut info);
        SeReleaseSubjectContext(&mut ctx);
        (status, kind)
    };
    if !nt_success(status) || info.is_null() {
        return Err(STATUS_ACCESS_DENIED);
    }
    // SAFETY: TOKEN_USER with a valid SID; at most 8 + 4 * 15 bytes are read.
    let caller = unsafe {
        let sid = (*info.cast::<TOKEN_USER>()).User.Sid.cast::<u8>();
        let count = usize::from(read_volatile(sid.add(1))).min(15);
        caller_identity(
            handle,
            kind,
            core::slice::from_raw_parts(sid, 8 + 4 * count),
        )
    };
    // SAFETY: frees the token information (ExFreePool == ExFreePoolWithTag(p, 0)).
    unsafe { ExFreePoolWithTag(info, 0) };
    caller
}

/// # Safety
/// As for [`dispatch`].
unsafe fn dispatch_ioctl(irp: PIRP) -> NTSTATUS {
    // SAFETY: a device-control IRP for our device.
    let (stack, (code, in_len, out_len)) = unsafe {
        let stack = current_stack(irp);
        (stack, ioctl_parameters(stack))
    };
    let finish = |status: NTSTATUS, bytes: usize| {
        // SAFETY: we own the IRP and complete it exactly once.
        unsafe { complete(irp, status, if nt_success(status) { bytes } else { 0 }) };
        status
    };
    if in_len > MAX_INPUT_BYTES {
        return finish(STATUS_INVALID_PARAMETER, 0);
    }
    // SAFETY: the I/O manager's system buffer holds `in_len` input bytes (shared with the
    // buffered output, hence the copy before anything is written).
    let sysbuf = unsafe { system_buffer(irp) };
    let mut input = [0u8; MAX_INPUT_BYTES];
    if in_len > 0 {
        if sysbuf.is_null() {
            return finish(STATUS_INVALID_PARAMETER, 0);
        }
        // SAFETY: as above.
        unsafe { core::ptr::copy_nonoverlapping(sysbuf, input.as_mut_ptr(), in_len) };
    }
    // SAFETY: our stack location; the FILE_OBJECT identifies the handle while it is open.
    let handle = unsafe { (*stack).FileObject } as usize;
    let caller = match caller_of(handle) {
        Ok(caller) => caller,
        Err(status) => return finish(status, 0),
    };
    // SAFETY: MdlAddress is set by the I/O manager for METHOD_OUT_DIRECT only.
    let mdl = unsafe { (*irp).MdlAddress };
    let buffered = code & 3 == METHOD_BUFFERED;
    let reply: &mut [u8] = if buffered && !sysbuf.is_null() && out_len > 0 {
        // SAFETY: METHOD_BUFFERED: the system buffer is max(in, out) bytes.
        unsafe { core::slice::from_raw_parts_mut(sysbuf, out_len) }
    } else {
        &mut []
    };
    let call = IoctlCall {
        code,
        input: &input[..in_len],
        reply,
        output_len: out_len,
        output_locked: !mdl.is_null(),
    };
    let facts = DriverFacts {
        stream: STREAM_OPEN.load(Acquire).then(|| {
            (
                STREAM_RUNNING.load(Acquire),
                STREAM_RATE.load(Relaxed),
                STREAM_CHANNELS.load(Relaxed) as u16,
            )
        }),
    };
    match POLICY.with(|policy| handle_request(policy, &CONTROL, &caller, call, facts)) {
        Err(status) => {
            klog!(warning, "control: IOCTL {code:#x} refused: {status:#x}");
            finish(status, 0)
        }
        Ok(Outcome::Reply(bytes)) => finish(STATUS_SUCCESS, bytes),
        Ok(Outcome::MuteSet(bytes)) => {
            let effective = CONTROL.wait_until_effective(
                // SAFETY: a 5 us busy-wait at PASSIVE_LEVEL.
                || unsafe { KeStallExecutionProcessor(5) },
                MUTE_EFFECTIVE_MAX_POLLS,
            );
            if effective {
                klog!(
                    info,
                    "control: {} (generation {})",
                    if CONTROL.is_muted() { "muted" } else { "live" },
                    CONTROL.generation()
                );
            } else {
                klog!(
                    error,
                    "control: mute set but not acknowledged by the audio cycle in time"
                );
            }
            finish(
                if effective {
                    STATUS_SUCCESS
                } else {
                    STATUS_DEVICE_BUSY
                },
                bytes,
            )
        }
        Ok(Outcome::AttachBridge {
            ring_channels,
            ring_bytes,
        }) => {
            // SAFETY: METHOD_OUT_DIRECT with a locked MDL (checked by the parser).
            match unsafe { attach_bridge(mdl, ring_channels as usize, ring_bytes, handle) } {
                Ok(()) => {
                    klog!(
                        info,
                        "control: bridge ring attached ({ring_channels} ch, {ring_bytes} bytes)"
                    );
                    // SAFETY: we own the IRP until published; see pend_bridge_irp.
                    unsafe { pend_bridge_irp(irp) }
                }
                Err(status) => {
                    klog!(warning, "control: bridge ring refused: {status:#x}");
                    POLICY.with(|p| p.handle_closed(handle));
                    finish(status, 0)
                }
            }
        }
    }
}

/// Maps and validates the ring, then publishes it to the timer callback.
///
/// # Safety
/// `mdl` is the locked output buffer of a pending REGISTER_BRIDGE IRP.
unsafe fn attach_bridge(
    mdl: PMDL,
    channels: usize,
    ring_bytes: usize,
    handle: HandleId,
) -> Result<(), NTSTATUS> {
    // SAFETY: per the contract.
    let (va, len) = unsafe { (mdl_system_address(mdl), mdl_byte_count(mdl)) };
    if va.is_null() {
        return Err(STATUS_INSUFFICIENT_RESOURCES);
    }
    let slots = ring_slots(va as usize, len.min(ring_bytes))?;
    // SAFETY: `va` maps `len` locked bytes, 8-aligned (ring_slots), which stay locked until
    // the IRP completes, and detach_bridge runs before that. The other side may write them
    // at any time: SharedRing copies what it validates and bounds every index.
    let ring = unsafe {
        let header = &*va.cast::<RingHeader>();
        let storage = core::slice::from_raw_parts(
            va.add(core::mem::size_of::<RingHeader>())
                .cast::<core::sync::atomic::AtomicU32>(),
            slots,
        );
        SharedRing::attach(header, storage).map_err(|_| STATUS_INVALID_PARAMETER)?
    };
    if ring.channels() != channels {
        return Err(STATUS_INVALID_PARAMETER);
    }
    let bridge = pool::alloc(
        BridgeRing {
            ring,
            channels,
            handle,
        },
        pool::TAG_BRIDGE,
    );
    if bridge.is_null() {
        return Err(STATUS_INSUFFICIENT_RESOURCES);
    }
    if BRIDGE
        .compare_exchange(null_mut(), bridge, SeqCst, SeqCst)
        .is_err()
    {
        // The policy admits one bridge at a time; this is a second line of defence.
        // SAFETY: never published.
        unsafe { pool::free(bridge, pool::TAG_BRIDGE) };
        return Err(STATUS_DEVICE_BUSY);
    }
    Ok(())
}

/// Keeps the REGISTER_BRIDGE IRP pending (it holds the ring's pages locked).
///
/// # Safety
/// We own `irp`; the ring from its MDL is published.
unsafe fn pend_bridge_irp(irp: PIRP) -> NTSTATUS {
    BRIDGE_IRP.store(irp, SeqCst);
    // SAFETY: we own the IRP; the cancel routine takes over from here.
    unsafe {
        mark_pending(irp);
        set_cancel_routine(irp, Some(cancel_bridge_irp));
        // Cancelled before the routine was set, and we got the routine back: cancel here.
        if is_cancelled(irp) && set_cancel_routine(irp, None) {
            BRIDGE_IRP.store(null_mut(), SeqCst);
            detach_bridge();
            complete(irp, STATUS_CANCELLED, 0);
        }
    }
    STATUS_PENDING
}

/// The bridge process died or cancelled its request.
unsafe extern "C" fn cancel_bridge_irp(_device: PDEVICE_OBJECT, irp: PIRP) {
    // SAFETY: called with the cancel spin lock held, at its IRQL.
    unsafe { IoReleaseCancelSpinLock((*irp).CancelIrql) };
    let _ = BRIDGE_IRP.compare_exchange(irp, null_mut(), SeqCst, SeqCst);
    detach_bridge();
    klog!(info, "control: bridge released (request cancelled)");
    // SAFETY: the I/O manager handed the IRP to us for completion.
    unsafe { complete(irp, STATUS_CANCELLED, 0) };
}

/// IRP_MJ_CLEANUP: the last handle of a file object closed; release its bridge.
///
/// # Safety
/// As for [`dispatch`].
unsafe fn cleanup(irp: PIRP) {
    // SAFETY: our IRP.
    let handle = unsafe { (*current_stack(irp)).FileObject } as usize;
    if POLICY.with(|p| p.bridge_handle()) == Some(handle) {
        let pending = BRIDGE_IRP.swap(null_mut(), SeqCst);
        detach_bridge();
        klog!(info, "control: bridge released (handle closed)");
        // SAFETY: if we take the cancel routine back, the IRP is ours to complete;
        // otherwise the cancel routine is running and completes it.
        if !pending.is_null() && unsafe { set_cancel_routine(pending, None) } {
            // SAFETY: as above.
            unsafe { complete(pending, STATUS_SUCCESS, 0) };
        }
    }
    // SAFETY: we own the cleanup IRP.
    unsafe { complete(irp, STATUS_SUCCESS, 0) };
}
