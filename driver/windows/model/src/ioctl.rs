//! The control device's IOCTL ABI (version 1) and its validation.
//!
//! ## Transport
//! `\\.\HardMuteControl` (`\Device\HardMuteControl`), a separate non-PnP device object; the
//! PortCls FDO never sees these codes. Every request starts with [`IoctlHeader`]
//! (`abi_version`, `size` = the size of the whole request struct); both must match exactly.
//!
//! * `GET_STATE` (METHOD_BUFFERED, read access): in [`GetStateRequest`], out [`StateReply`].
//! * `SET_MUTE` (METHOD_BUFFERED, write access): in [`SetMuteRequest`], out [`SetMuteReply`].
//! * `REGISTER_BRIDGE` (METHOD_OUT_DIRECT, read+write access): in
//!   [`RegisterBridgeRequest`]; the *output buffer* of the call is the bridge ring
//!   (`hardmute_core` `SharedRing` header + samples). The user buffer's address and length are
//!   thus handed over by `DeviceIoControl(lpOutBuffer, nOutBufferSize)`: the I/O manager
//!   probes and locks it into `Irp->MdlAddress` (raising/failing the request itself on a bad
//!   address, which Rust code could not catch), and the driver keeps the IRP pending for as
//!   long as the registration lasts. Closing the handle or the bridge process dying cancels
//!   the IRP, the DPC stops reading the ring (zeros: fail closed), and completing the IRP
//!   unlocks the pages. No user pointer is ever dereferenced by the driver.
//!
//! ## Who may do what (invariant 5)
//! * The device's DACL (SDDL `D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GRGW;;;IU)`) admits only
//!   SYSTEM, Administrators and interactive users; the device is created with
//!   FILE_DEVICE_SECURE_OPEN so the DACL also guards opens of `\Device\HardMuteControl\...`.
//! * **Identity.** A caller is the user of its primary token, or of its thread's impersonation
//!   token only at `SecurityImpersonation` or `SecurityDelegation`. An identification or
//!   anonymous token is refused ([`STATUS_BAD_IMPERSONATION_LEVEL`]): a process that got hold of
//!   another user's identification token (a named-pipe server a client connected to) can look
//!   at that identity but not speak for it here ([`caller_identity`]).
//! * **The owner** is the user SID the installer recorded in the driver's service key (value
//!   [`OWNER_SID_VALUE`], REG_BINARY), read once when the driver loads
//!   ([`ControlPolicy::with_recorded_owner`]). It does not depend on who logs on first, on the
//!   console or over RDP, nor on `runas`: only that SID's daemon may register the bridge or
//!   clear hard mute. Without a recorded owner (a development install), the first user whose
//!   `REGISTER_BRIDGE` succeeds is bound until the driver unloads, and `GET_STATE` says the
//!   owner was not recorded ([`OWNERSHIP_BOUND_AT_FIRST_REGISTRATION`]).
//! * A bridge from any other user gets [`STATUS_RESOURCE_NOT_OWNED`] (Win32 `ERROR_NOT_OWNER`):
//!   the reason a second user's daemon cannot take the device. One bridge at a time
//!   (`STATUS_DEVICE_BUSY`).
//! * `SET_MUTE(mute)` is allowed to every caller admitted by the DACL (adding mute is always
//!   safe); `SET_MUTE(unmute)` only to the owner. Other users, services, and admins of other
//!   accounts get `Authority::Other` from the core and are refused.
//! * `GET_STATE` tells a caller who is not the owner the mute flag and that it is not the owner,
//!   nothing else (no stream, counters, generation or last source: those would say when the
//!   owner is in a call and when they mute).
//! * Same-user malware is the same principal as the owner's daemon and is out of scope
//!   (docs/threat-model.md; docs/design.md, threat model).

use crate::ks::{rd_u32, wr_u32, wr_u64};
use crate::status::*;
use core::mem::{offset_of, size_of};
use hardmute_core::control::{Authority, ChangeSource, ControlSnapshot};

pub const ABI_VERSION: u32 = 1;

pub const FILE_DEVICE_UNKNOWN: u32 = 0x22;
pub const METHOD_BUFFERED: u32 = 0;
pub const METHOD_OUT_DIRECT: u32 = 2;
pub const FILE_READ_ACCESS: u32 = 1;
pub const FILE_WRITE_ACCESS: u32 = 2;

/// `CTL_CODE(DeviceType, Function, Method, Access)`.
pub const fn ctl_code(device_type: u32, function: u32, method: u32, access: u32) -> u32 {
    (device_type << 16) | (access << 14) | (function << 2) | method
}

pub const IOCTL_HARDMUTE_GET_STATE: u32 = ctl_code(
    FILE_DEVICE_UNKNOWN,
    0x901,
    METHOD_BUFFERED,
    FILE_READ_ACCESS,
);
pub const IOCTL_HARDMUTE_SET_MUTE: u32 = ctl_code(
    FILE_DEVICE_UNKNOWN,
    0x902,
    METHOD_BUFFERED,
    FILE_WRITE_ACCESS,
);
pub const IOCTL_HARDMUTE_REGISTER_BRIDGE: u32 = ctl_code(
    FILE_DEVICE_UNKNOWN,
    0x903,
    METHOD_OUT_DIRECT,
    FILE_READ_ACCESS | FILE_WRITE_ACCESS,
);

/// Smallest and largest ring the driver accepts (header + samples). 1 MiB is > 2 s of
/// stereo f32 at 48 kHz; a larger lock would just pin user memory for no benefit.
pub const MIN_RING_BYTES: usize = 4096;
pub const MAX_RING_BYTES: usize = 1 << 20;

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoctlHeader {
    pub abi_version: u32,
    /// Size in bytes of the whole request/reply struct this header starts.
    pub size: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GetStateRequest {
    pub header: IoctlHeader,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetMuteRequest {
    pub header: IoctlHeader,
    /// 1 = mute, 0 = unmute; anything else is rejected.
    pub muted: u32,
    /// A `hardmute_core::control::ChangeSource` value.
    pub source: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetMuteReply {
    pub header: IoctlHeader,
    pub generation: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegisterBridgeRequest {
    pub header: IoctlHeader,
    /// Interleaved f32 channels the bridge writes into the ring (1 or 2).
    pub ring_channels: u32,
    /// Must be 0 (reserved for later versions).
    pub flags: u32,
}

/// Reply of `GET_STATE`: the core control block's snapshot plus the stream and caller facts
/// the bridge needs (rate to resample to; whether it is the owner).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateReply {
    pub abi_version: u32,
    pub size: u32,
    pub hard_mute: u32,
    pub last_source: u32,
    pub generation: u64,
    pub acked_generation: u64,
    pub cycle_seq: u64,
    pub frames_delivered: u64,
    pub frames_zeroed: u64,
    pub underruns: u64,
    pub overruns: u64,
    pub bridge_heartbeat: u64,
    /// 1 while a capture stream is in RUN.
    pub stream_running: u32,
    pub stream_rate: u32,
    pub stream_channels: u32,
    pub bridge_registered: u32,
    /// One of [`OWNERSHIP_NONE`], [`OWNERSHIP_CALLER`], [`OWNERSHIP_OTHER_USER`].
    pub caller_is_owner: u32,
    /// Bit flags: [`OWNERSHIP_BOUND_AT_FIRST_REGISTRATION`].
    pub reserved: u32,
}

/// `StateReply::caller_is_owner`: no owner is bound yet (no recorded owner, no bridge so far).
pub const OWNERSHIP_NONE: u32 = 0;
/// `StateReply::caller_is_owner`: the caller is the owner.
pub const OWNERSHIP_CALLER: u32 = 1;
/// `StateReply::caller_is_owner`: another user owns the device.
pub const OWNERSHIP_OTHER_USER: u32 = 2;
/// `StateReply::reserved` bit: no owner was recorded by the installer; the owner is whoever
/// registered first since the driver loaded (development installs).
pub const OWNERSHIP_BOUND_AT_FIRST_REGISTRATION: u32 = 1;

/// The REG_BINARY value in the driver's service key holding the owner's user SID.
pub const OWNER_SID_VALUE: &str = "OwnerSid";

const _: () = {
    assert!(size_of::<IoctlHeader>() == 8);
    assert!(size_of::<GetStateRequest>() == 8);
    assert!(size_of::<SetMuteRequest>() == 16 && offset_of!(SetMuteRequest, source) == 12);
    assert!(size_of::<SetMuteReply>() == 16 && offset_of!(SetMuteReply, generation) == 8);
    assert!(
        size_of::<RegisterBridgeRequest>() == 16 && offset_of!(RegisterBridgeRequest, flags) == 12
    );
    assert!(size_of::<StateReply>() == 104);
    assert!(offset_of!(StateReply, generation) == 16);
    assert!(offset_of!(StateReply, bridge_heartbeat) == 72);
    assert!(offset_of!(StateReply, stream_running) == 80);
    assert!(offset_of!(StateReply, reserved) == 100);
};

/// A validated request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    GetState,
    SetMute {
        muted: bool,
        source: ChangeSource,
    },
    RegisterBridge {
        ring_channels: u32,
        ring_bytes: usize,
    },
}

/// Parses one IOCTL. `input` is the system buffer's input part (exactly
/// `InputBufferLength` bytes), `output_len` the `OutputBufferLength`, `output_locked` whether
/// the I/O manager supplied an MDL for METHOD_OUT_DIRECT. Nothing is trusted.
pub fn parse_request(
    code: u32,
    input: &[u8],
    output_len: usize,
    output_locked: bool,
) -> Result<Request, NtStatus> {
    let expected_in = match code {
        IOCTL_HARDMUTE_GET_STATE => size_of::<GetStateRequest>(),
        IOCTL_HARDMUTE_SET_MUTE => size_of::<SetMuteRequest>(),
        IOCTL_HARDMUTE_REGISTER_BRIDGE => size_of::<RegisterBridgeRequest>(),
        _ => return Err(STATUS_INVALID_DEVICE_REQUEST),
    };
    if input.len() != expected_in {
        return Err(if input.len() < expected_in {
            STATUS_BUFFER_TOO_SMALL
        } else {
            STATUS_INVALID_PARAMETER
        });
    }
    if rd_u32(input, 0) != ABI_VERSION {
        return Err(STATUS_REVISION_MISMATCH);
    }
    if rd_u32(input, 4) as usize != expected_in {
        return Err(STATUS_INVALID_PARAMETER);
    }
    match code {
        IOCTL_HARDMUTE_GET_STATE => {
            if output_len < size_of::<StateReply>() {
                return Err(STATUS_BUFFER_TOO_SMALL);
            }
            Ok(Request::GetState)
        }
        IOCTL_HARDMUTE_SET_MUTE => {
            let muted = match rd_u32(input, 8) {
                0 => false,
                1 => true,
                _ => return Err(STATUS_INVALID_PARAMETER),
            };
            let source = change_source(rd_u32(input, 12)).ok_or(STATUS_INVALID_PARAMETER)?;
            if output_len < size_of::<SetMuteReply>() {
                return Err(STATUS_BUFFER_TOO_SMALL);
            }
            Ok(Request::SetMute { muted, source })
        }
        _ => {
            let ring_channels = rd_u32(input, 8);
            if !(1..=2).contains(&ring_channels) || rd_u32(input, 12) != 0 {
                return Err(STATUS_INVALID_PARAMETER);
            }
            if !output_locked || output_len == 0 {
                return Err(STATUS_INVALID_USER_BUFFER);
            }
            if !(MIN_RING_BYTES..=MAX_RING_BYTES).contains(&output_len) {
                return Err(STATUS_INVALID_PARAMETER);
            }
            Ok(Request::RegisterBridge {
                ring_channels,
                ring_bytes: output_len,
            })
        }
    }
}

/// `ChangeSource` from its ABI value. `FailSafe` and `Startup` are the driver's own and
/// cannot be claimed by a caller.
pub fn change_source(raw: u32) -> Option<ChangeSource> {
    match ChangeSource::from_u32(raw)? {
        ChangeSource::Startup | ChangeSource::FailSafe => None,
        source => Some(source),
    }
}

/// Maximum SID length (`SECURITY_MAX_SID_SIZE`).
pub const MAX_SID_BYTES: usize = 68;

/// A caller's token user SID, copied (never a pointer into a token).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct UserSid {
    len: u8,
    bytes: [u8; MAX_SID_BYTES],
}

impl core::fmt::Debug for UserSid {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "UserSid({:02x?})", self.as_bytes())
    }
}

impl UserSid {
    /// A SID is 8 bytes + 4 per sub-authority (byte 1 = count, at most 15).
    pub fn from_bytes(sid: &[u8]) -> Option<Self> {
        let count = *sid.get(1)? as usize;
        let len = 8 + 4 * count;
        if sid.first() != Some(&1) || count > 15 || sid.len() < len {
            return None;
        }
        let mut bytes = [0u8; MAX_SID_BYTES];
        bytes[..len].copy_from_slice(&sid[..len]);
        Some(UserSid {
            len: len as u8,
            bytes,
        })
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// A handle on the control device (the FILE_OBJECT address in the kernel: unique while open).
pub type HandleId = usize;

/// Who is calling: the handle and the token user behind it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    pub handle: HandleId,
    pub user: UserSid,
}

/// The token a request runs under, as `SeCaptureSubjectContext` reports it: the thread's
/// impersonation token (with its level) if it has one, else the process's primary token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubjectToken {
    Primary,
    /// `SECURITY_IMPERSONATION_LEVEL`: 0 anonymous, 1 identification, 2 impersonation,
    /// 3 delegation (any other value is refused).
    Impersonation(u32),
}

pub const SECURITY_ANONYMOUS: u32 = 0;
pub const SECURITY_IDENTIFICATION: u32 = 1;
pub const SECURITY_IMPERSONATION: u32 = 2;
pub const SECURITY_DELEGATION: u32 = 3;

/// Who is calling, from what the kernel says about the request's token: the user SID (raw
/// bytes of `TOKEN_USER`) counts only for a primary token or an impersonation token at
/// `SecurityImpersonation`/`SecurityDelegation`. Anything else is refused before parsing.
pub fn caller_identity(
    handle: HandleId,
    token: SubjectToken,
    user_sid: &[u8],
) -> Result<Caller, NtStatus> {
    match token {
        SubjectToken::Primary
        | SubjectToken::Impersonation(SECURITY_IMPERSONATION | SECURITY_DELEGATION) => {}
        SubjectToken::Impersonation(_) => return Err(STATUS_BAD_IMPERSONATION_LEVEL),
    }
    let user = UserSid::from_bytes(user_sid).ok_or(STATUS_ACCESS_DENIED)?;
    Ok(Caller { handle, user })
}

/// The control device's ownership state (lives in the device extension, guarded by the
/// glue's spin lock; never touched by the timer DPC).
#[derive(Clone, Copy, Debug, Default)]
pub struct ControlPolicy {
    owner: Option<UserSid>,
    /// The owner came from the installer's record (not from the first registration).
    recorded: bool,
    bridge_handle: Option<HandleId>,
}

impl ControlPolicy {
    /// No recorded owner: the first successful `REGISTER_BRIDGE` binds one.
    pub const fn new() -> Self {
        ControlPolicy {
            owner: None,
            recorded: false,
            bridge_handle: None,
        }
    }

    /// The owner the installer recorded (the `OwnerSid` value of the service key).
    pub const fn with_recorded_owner(owner: UserSid) -> Self {
        ControlPolicy {
            owner: Some(owner),
            recorded: true,
            bridge_handle: None,
        }
    }

    /// Whether the owner came from the installer's record.
    pub fn owner_recorded(&self) -> bool {
        self.recorded
    }

    /// `StateReply::caller_is_owner` for `caller`.
    pub fn ownership_of(&self, caller: &Caller) -> u32 {
        match self.owner {
            None => OWNERSHIP_NONE,
            Some(owner) if owner == caller.user => OWNERSHIP_CALLER,
            Some(_) => OWNERSHIP_OTHER_USER,
        }
    }

    pub fn owner(&self) -> Option<UserSid> {
        self.owner
    }
    pub fn bridge_handle(&self) -> Option<HandleId> {
        self.bridge_handle
    }

    /// The core authority a caller gets for `SET_MUTE`.
    pub fn authority(&self, caller: &Caller) -> Authority {
        match self.owner {
            Some(owner) if owner == caller.user => Authority::Owner,
            _ => Authority::Other,
        }
    }

    /// Admits a `REGISTER_BRIDGE`: only the owner (recorded, or bound on the first success when
    /// none was recorded); another user gets [`STATUS_RESOURCE_NOT_OWNED`]; a second concurrent
    /// bridge `STATUS_DEVICE_BUSY`.
    pub fn register_bridge(&mut self, caller: &Caller) -> Result<(), NtStatus> {
        if let Some(owner) = self.owner {
            if owner != caller.user {
                return Err(STATUS_RESOURCE_NOT_OWNED);
            }
        }
        if self.bridge_handle.is_some() {
            return Err(STATUS_DEVICE_BUSY);
        }
        self.owner = Some(caller.user);
        self.bridge_handle = Some(caller.handle);
        Ok(())
    }

    /// The bridge's IRP was cancelled or its handle cleaned up. Returns true if `handle` was
    /// the bridge (the glue then detaches the ring before completing the IRP).
    pub fn handle_closed(&mut self, handle: HandleId) -> bool {
        if self.bridge_handle == Some(handle) {
            self.bridge_handle = None;
            true
        } else {
            false
        }
    }
}

/// The `GET_STATE` reply for a caller who is not the owner: the mute flag and the ownership
/// facts, everything else zero.
pub fn redacted_state_reply(muted: bool, ownership: u32, flags: u32) -> StateReply {
    StateReply {
        abi_version: ABI_VERSION,
        size: size_of::<StateReply>() as u32,
        hard_mute: u32::from(muted),
        caller_is_owner: ownership,
        reserved: flags,
        ..StateReply::default()
    }
}

/// Fills a `GET_STATE` reply from a control snapshot (the owner's view).
pub fn state_reply(
    snap: &ControlSnapshot,
    stream: Option<(bool, u32, u16)>,
    bridge: bool,
    is_owner: bool,
) -> StateReply {
    let (running, rate, channels) = stream.unwrap_or((false, 0, 0));
    StateReply {
        abi_version: ABI_VERSION,
        size: size_of::<StateReply>() as u32,
        hard_mute: u32::from(snap.muted),
        last_source: snap.last_source.map_or(0, |s| s as u32),
        generation: snap.generation,
        acked_generation: snap.acked_generation,
        cycle_seq: snap.cycle_seq,
        frames_delivered: snap.frames_delivered,
        frames_zeroed: snap.frames_zeroed,
        underruns: snap.underruns,
        overruns: snap.overruns,
        bridge_heartbeat: snap.bridge_heartbeat,
        stream_running: u32::from(running),
        stream_rate: rate,
        stream_channels: u32::from(channels),
        bridge_registered: u32::from(bridge),
        caller_is_owner: u32::from(is_owner),
        reserved: 0,
    }
}

impl StateReply {
    /// Little-endian wire bytes (what the glue copies into the system buffer).
    pub fn write_to(&self, out: &mut [u8; size_of::<StateReply>()]) {
        let words32 = [
            (0, self.abi_version),
            (4, self.size),
            (8, self.hard_mute),
            (12, self.last_source),
        ];
        for (off, v) in words32 {
            wr_u32(out, off, v);
        }
        let words64 = [
            (16, self.generation),
            (24, self.acked_generation),
            (32, self.cycle_seq),
            (40, self.frames_delivered),
            (48, self.frames_zeroed),
            (56, self.underruns),
            (64, self.overruns),
            (72, self.bridge_heartbeat),
        ];
        for (off, v) in words64 {
            wr_u64(out, off, v);
        }
        let tail = [
            (80, self.stream_running),
            (84, self.stream_rate),
            (88, self.stream_channels),
            (92, self.bridge_registered),
            (96, self.caller_is_owner),
            (100, self.reserved),
        ];
        for (off, v) in tail {
            wr_u32(out, off, v);
        }
    }
}

/// Largest input any v1 request has, rounded up: the glue copies at most this many bytes
/// out of the (shared in/out) system buffer before parsing, and refuses longer inputs.
pub const MAX_INPUT_BYTES: usize = 64;
/// `STATUS_DATATYPE_MISALIGNMENT`: the ring must be 8-byte aligned (its header has u64 atomics).
pub const STATUS_DATATYPE_MISALIGNMENT: NtStatus = 0x8000_0002_u32 as i32;
/// How long `SET_MUTE` waits for an in-flight realtime cycle (polls of the glue's 5 us
/// stall: 20 ms, far beyond one timer cycle of a few microseconds).
pub const MUTE_EFFECTIVE_MAX_POLLS: u32 = 4_000;

/// What the glue must do after [`handle_request`] accepted a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Complete the IRP with STATUS_SUCCESS and `Information` = this many reply bytes.
    Reply(usize),
    /// A mute was set: outside any lock, wait with `ControlBlock::wait_until_effective`
    /// (at most [`MUTE_EFFECTIVE_MAX_POLLS`]) so the call returns only once no realtime
    /// cycle can use the old state (invariant 2), then complete as `Reply`. If the wait
    /// times out complete with `STATUS_DEVICE_BUSY` (the mute itself stands).
    MuteSet(usize),
    /// Map the IRP's MDL, validate the ring with [`ring_slots`] + `SharedRing::attach`
    /// (channels must equal `ring_channels`), publish it to the timer DPC and pend the IRP.
    /// On any failure after this point the glue calls [`ControlPolicy::handle_closed`].
    AttachBridge {
        ring_channels: u32,
        ring_bytes: usize,
    },
}

/// Facts about the driver the glue passes in for `GET_STATE`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DriverFacts {
    /// (running, rate, channels) of the open capture stream, if any.
    pub stream: Option<(bool, u32, u16)>,
}

/// One IOCTL as the glue sees it in the IRP.
#[derive(Debug)]
pub struct IoctlCall<'a> {
    pub code: u32,
    /// The caller's input, already copied out of the system buffer (at most
    /// [`MAX_INPUT_BYTES`]; the glue refuses longer inputs without copying).
    pub input: &'a [u8],
    /// The system buffer a buffered reply is written into (`OutputBufferLength` bytes for
    /// METHOD_BUFFERED; empty for METHOD_OUT_DIRECT).
    pub reply: &'a mut [u8],
    /// `OutputBufferLength` as the I/O manager saw it.
    pub output_len: usize,
    /// Whether the I/O manager supplied a locked MDL (METHOD_OUT_DIRECT).
    pub output_locked: bool,
}

/// Validates and executes one control-device IOCTL (under the glue's policy lock; it never
/// waits).
pub fn handle_request(
    policy: &mut ControlPolicy,
    ctl: &hardmute_core::control::ControlBlock,
    caller: &Caller,
    call: IoctlCall<'_>,
    facts: DriverFacts,
) -> Result<Outcome, NtStatus> {
    let IoctlCall {
        code,
        input,
        reply,
        output_len,
        output_locked,
    } = call;
    if input.len() > MAX_INPUT_BYTES {
        return Err(STATUS_INVALID_PARAMETER);
    }
    match parse_request(code, input, output_len, output_locked)? {
        Request::GetState => {
            let ownership = policy.ownership_of(caller);
            let flags = if policy.owner_recorded() {
                0
            } else {
                OWNERSHIP_BOUND_AT_FIRST_REGISTRATION
            };
            let state = if ownership == OWNERSHIP_CALLER {
                let mut s = state_reply(
                    &ctl.snapshot(),
                    facts.stream,
                    policy.bridge_handle().is_some(),
                    true,
                );
                s.reserved = flags;
                s
            } else {
                // Not the owner: the flag only (invariant 5).
                redacted_state_reply(ctl.is_muted(), ownership, flags)
            };
            let out = reply
                .get_mut(..size_of::<StateReply>())
                .and_then(|r| <&mut [u8; size_of::<StateReply>()]>::try_from(r).ok())
                .ok_or(STATUS_BUFFER_TOO_SMALL)?;
            state.write_to(out);
            Ok(Outcome::Reply(size_of::<StateReply>()))
        }
        Request::SetMute { muted, source } => {
            let out = reply
                .get_mut(..size_of::<SetMuteReply>())
                .ok_or(STATUS_BUFFER_TOO_SMALL)?;
            let authority = policy.authority(caller);
            // Only the owner's own session may name itself (hotkey, panel...); anyone else is
            // recorded as another client, whatever it claims.
            let source = if authority == Authority::Owner {
                source
            } else {
                ChangeSource::OtherClient
            };
            let generation = ctl
                .set_muted(muted, source, authority)
                .map_err(|_refused| STATUS_ACCESS_DENIED)?;
            wr_u32(out, 0, ABI_VERSION);
            wr_u32(out, 4, size_of::<SetMuteReply>() as u32);
            wr_u64(out, 8, generation);
            // Invariant 2: a mute returns only once no realtime cycle can use the old state.
            Ok(if muted {
                Outcome::MuteSet(size_of::<SetMuteReply>())
            } else {
                Outcome::Reply(size_of::<SetMuteReply>())
            })
        }
        Request::RegisterBridge {
            ring_channels,
            ring_bytes,
        } => {
            policy.register_bridge(caller)?;
            Ok(Outcome::AttachBridge {
                ring_channels,
                ring_bytes,
            })
        }
    }
}

/// Checks the mapped ring memory before the glue forms references into it: 8-byte aligned,
/// room for the 32-byte `RingHeader`; returns the number of `AtomicU32` slots after it.
pub fn ring_slots(address: usize, ring_bytes: usize) -> Result<usize, NtStatus> {
    let header = size_of::<hardmute_core::ring::RingHeader>();
    if address == 0 {
        return Err(STATUS_INVALID_USER_BUFFER);
    }
    if !address.is_multiple_of(8) {
        return Err(STATUS_DATATYPE_MISALIGNMENT);
    }
    if !(MIN_RING_BYTES..=MAX_RING_BYTES).contains(&ring_bytes)
        || address.checked_add(ring_bytes).is_none()
    {
        return Err(STATUS_INVALID_PARAMETER);
    }
    Ok((ring_bytes - header) / 4)
}

/// Client side of the ABI (for the Windows backend of `hardmuted`): request bytes for
/// `DeviceIoControl` and reply decoding. The driver never uses these.
pub mod client {
    use super::*;
    use crate::ks::rd_u32;

    fn header(size: usize) -> [u8; 8] {
        let mut h = [0u8; 8];
        wr_u32(&mut h, 0, ABI_VERSION);
        wr_u32(&mut h, 4, size as u32);
        h
    }

    pub fn get_state() -> [u8; size_of::<GetStateRequest>()] {
        header(size_of::<GetStateRequest>())
    }

    pub fn set_mute(muted: bool, source: ChangeSource) -> [u8; size_of::<SetMuteRequest>()] {
        let mut b = [0u8; size_of::<SetMuteRequest>()];
        let h = header(b.len());
        b[..8].copy_from_slice(&h);
        wr_u32(&mut b, 8, u32::from(muted));
        wr_u32(&mut b, 12, source as u32);
        b
    }

    /// The ring memory (header + `capacity` f32 slots) is the call's *output* buffer.
    pub fn register_bridge(ring_channels: u32) -> [u8; size_of::<RegisterBridgeRequest>()] {
        let mut b = [0u8; size_of::<RegisterBridgeRequest>()];
        let h = header(b.len());
        b[..8].copy_from_slice(&h);
        wr_u32(&mut b, 8, ring_channels);
        b
    }

    fn rd_u64(b: &[u8], off: usize) -> u64 {
        u64::from(rd_u32(b, off)) | (u64::from(rd_u32(b, off + 4)) << 32)
    }

    /// Decodes a `GET_STATE` reply; None if the size or version is not v1's.
    pub fn state_reply(b: &[u8]) -> Option<StateReply> {
        if b.len() < size_of::<StateReply>()
            || rd_u32(b, 0) != ABI_VERSION
            || rd_u32(b, 4) as usize != size_of::<StateReply>()
        {
            return None;
        }
        Some(StateReply {
            abi_version: rd_u32(b, 0),
            size: rd_u32(b, 4),
            hard_mute: rd_u32(b, 8),
            last_source: rd_u32(b, 12),
            generation: rd_u64(b, 16),
            acked_generation: rd_u64(b, 24),
            cycle_seq: rd_u64(b, 32),
            frames_delivered: rd_u64(b, 40),
            frames_zeroed: rd_u64(b, 48),
            underruns: rd_u64(b, 56),
            overruns: rd_u64(b, 64),
            bridge_heartbeat: rd_u64(b, 72),
            stream_running: rd_u32(b, 80),
            stream_rate: rd_u32(b, 84),
            stream_channels: rd_u32(b, 88),
            bridge_registered: rd_u32(b, 92),
            caller_is_owner: rd_u32(b, 96),
            reserved: rd_u32(b, 100),
        })
    }

    /// Decodes a `SET_MUTE` reply: the new generation.
    pub fn set_mute_reply(b: &[u8]) -> Option<u64> {
        (b.len() >= size_of::<SetMuteReply>()
            && rd_u32(b, 0) == ABI_VERSION
            && rd_u32(b, 4) as usize == size_of::<SetMuteReply>())
        .then(|| rd_u64(b, 8))
    }
}
