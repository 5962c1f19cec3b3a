//! The control device's security descriptor, built as self-relative bytes.
//!
//! Equivalent of the SDDL `D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GRGW;;;IU)`: a protected DACL
//! granting GENERIC_ALL to LocalSystem and Administrators and GENERIC_READ|GENERIC_WRITE
//! to INTERACTIVE users; nobody else (no services running as other accounts, no network
//! logons, no AppContainers) can open the device. `IoCreateDeviceSecure` lives in the
//! static library wdmsec.lib, which only the WDK ships, so the driver applies these bytes
//! with `ZwSetSecurityObject` right after `IoCreateDevice` (before the symbolic link exists,
//! so no user-mode open can race it). Why these principals: the owner's daemon runs as the
//! interactive user; SYSTEM/admins must be able to inspect and add mute; anything else has
//! no business with the microphone's mute state (docs/design.md, invariant 5).

pub const SDDL: &str = "D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GRGW;;;IU)";

pub const GENERIC_ALL: u32 = 0x1000_0000;
pub const GENERIC_READ: u32 = 0x8000_0000;
pub const GENERIC_WRITE: u32 = 0x4000_0000;
const SE_DACL_PRESENT: u16 = 0x0004;
const SE_DACL_PROTECTED: u16 = 0x1000;
const SE_SELF_RELATIVE: u16 = 0x8000;
const ACCESS_ALLOWED_ACE_TYPE: u8 = 0;
const ACL_REVISION: u8 = 2;

/// S-1-5-18 (LocalSystem).
pub const SID_LOCAL_SYSTEM: [u8; 12] = [1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0];
/// S-1-5-32-544 (BUILTIN\Administrators).
pub const SID_ADMINISTRATORS: [u8; 16] = [1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x20, 0x02, 0, 0];
/// S-1-5-4 (INTERACTIVE).
pub const SID_INTERACTIVE: [u8; 12] = [1, 1, 0, 0, 0, 0, 0, 5, 4, 0, 0, 0];

const SD_HEADER: usize = 20;
const ACL_HEADER: usize = 8;
const ACE_HEADER: usize = 8;
pub const ACL_SIZE: usize = ACL_HEADER + 3 * ACE_HEADER + 12 + 16 + 12;
pub const SD_SIZE: usize = SD_HEADER + ACL_SIZE;

const fn put(out: &mut [u8; SD_SIZE], at: usize, bytes: &[u8]) {
    let mut i = 0;
    while i < bytes.len() {
        out[at + i] = bytes[i];
        i += 1;
    }
}

const fn ace(out: &mut [u8; SD_SIZE], at: usize, mask: u32, sid: &[u8]) -> usize {
    let size = (ACE_HEADER + sid.len()) as u16;
    put(out, at, &[ACCESS_ALLOWED_ACE_TYPE, 0]);
    put(out, at + 2, &size.to_le_bytes());
    put(out, at + 4, &mask.to_le_bytes());
    put(out, at + 8, sid);
    at + size as usize
}

/// The self-relative `SECURITY_DESCRIPTOR` (revision 1, DACL only).
pub const fn control_device_sd() -> [u8; SD_SIZE] {
    let mut sd = [0u8; SD_SIZE];
    put(&mut sd, 0, &[1, 0]); // Revision, Sbz1
    put(
        &mut sd,
        2,
        &(SE_DACL_PRESENT | SE_DACL_PROTECTED | SE_SELF_RELATIVE).to_le_bytes(),
    );
    // Owner, Group, Sacl offsets stay 0; Dacl follows the header.
    put(&mut sd, 16, &(SD_HEADER as u32).to_le_bytes());
    let acl = SD_HEADER;
    put(&mut sd, acl, &[ACL_REVISION, 0]);
    put(&mut sd, acl + 2, &(ACL_SIZE as u16).to_le_bytes());
    put(&mut sd, acl + 4, &3u16.to_le_bytes());
    let mut at = acl + ACL_HEADER;
    at = ace(&mut sd, at, GENERIC_ALL, &SID_LOCAL_SYSTEM);
    at = ace(&mut sd, at, GENERIC_ALL, &SID_ADMINISTRATORS);
    at = ace(&mut sd, at, GENERIC_READ | GENERIC_WRITE, &SID_INTERACTIVE);
    assert!(at == SD_SIZE);
    sd
}

/// The bytes the driver applies (evaluated at compile time).
pub static CONTROL_DEVICE_SD: [u8; SD_SIZE] = control_device_sd();
