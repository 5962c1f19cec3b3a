//! The NTSTATUS values the miniport returns. Kept here (not from bindings) so the portable
//! logic can name them; the kernel crate asserts they equal the DDK's values.

/// An NTSTATUS code (`LONG` in the DDK).
pub type NtStatus = i32;

// `as i32` on purpose: NTSTATUS error codes have the high bit set.
pub const STATUS_SUCCESS: NtStatus = 0;
pub const STATUS_BUFFER_OVERFLOW: NtStatus = 0x8000_0005_u32 as i32;
pub const STATUS_NOT_IMPLEMENTED: NtStatus = 0xC000_0002_u32 as i32;
pub const STATUS_INVALID_DEVICE_REQUEST: NtStatus = 0xC000_0010_u32 as i32;
pub const STATUS_ACCESS_DENIED: NtStatus = 0xC000_0022_u32 as i32;
pub const STATUS_BUFFER_TOO_SMALL: NtStatus = 0xC000_0023_u32 as i32;
pub const STATUS_INVALID_PARAMETER: NtStatus = 0xC000_000D_u32 as i32;
pub const STATUS_INVALID_DEVICE_STATE: NtStatus = 0xC000_0184_u32 as i32;
pub const STATUS_INSUFFICIENT_RESOURCES: NtStatus = 0xC000_009A_u32 as i32;
pub const STATUS_NOT_SUPPORTED: NtStatus = 0xC000_00BB_u32 as i32;
pub const STATUS_NO_MATCH: NtStatus = 0xC000_0272_u32 as i32;
pub const STATUS_REVISION_MISMATCH: NtStatus = 0xC000_0059_u32 as i32;
pub const STATUS_DEVICE_BUSY: NtStatus = 0x8000_0011_u32 as i32;
pub const STATUS_INVALID_USER_BUFFER: NtStatus = 0xC000_00E8_u32 as i32;
pub const STATUS_PENDING: NtStatus = 0x0000_0103;
pub const STATUS_CANCELLED: NtStatus = 0xC000_0120_u32 as i32;
pub const STATUS_DEVICE_NOT_READY: NtStatus = 0xC000_00A3_u32 as i32;
/// The caller's thread impersonates with a token below `SecurityImpersonation` (an
/// identification or anonymous token: someone else's identity it may look at, not use).
pub const STATUS_BAD_IMPERSONATION_LEVEL: NtStatus = 0xC000_00A5_u32 as i32;
/// The device is owned by another user (maps to Win32 `ERROR_NOT_OWNER`, 288): the reason a
/// second user's daemon cannot take the device, distinct from a plain access denial.
pub const STATUS_RESOURCE_NOT_OWNED: NtStatus = 0xC000_0264_u32 as i32;

/// `NT_SUCCESS(status)`: success and informational codes are >= 0.
pub const fn nt_success(status: NtStatus) -> bool {
    status >= 0
}
