//! Who a client of the plug-in is, from the OS — never from what the client declares.
//!
//! coreaudiod gives the plug-in a process id with every client (`AudioServerPlugInClientInfo`'s
//! `mProcessID` in AddDeviceClient) and with every property call (`inClientProcessID`). The
//! host interface offers nothing more (no audit token, no uid): the uid comes from the kernel
//! for that pid ([`apple`]: `proc_pidinfo(PROC_PIDT_SHORTBSDINFO)`, which works across users,
//! as coreaudiod runs as `_coreaudiod`). The owner's uid is the one the installer recorded
//! ([`OWNER_FILE`]). [`fake`] stands in for both on Linux and under the `sim` feature, so the
//! simulated coreaudiod can play two users.
//!
//! Known limit: between a process's exit and the HAL's next call a pid can be reused; the HAL
//! gives nothing stronger. A reused pid of the owner's user is the owner's principal anyway; a
//! pid reused by another user gets that user's uid, so it is refused.

use crate::abi::PidT;

#[cfg(all(target_vendor = "apple", not(feature = "sim")))]
pub mod apple;
#[cfg(any(not(target_vendor = "apple"), feature = "sim"))]
pub mod fake;

/// Where the installer records the owning user's uid (decimal text, one line), inside the
/// root-owned plug-in bundle: only an administrator can change who owns the microphone.
pub const OWNER_FILE: &str =
    "/Library/Audio/Plug-Ins/HAL/HardMute.driver/Contents/Resources/owner-uid";

/// The OS facts the plug-in needs about its clients.
pub trait Identity {
    /// The effective uid of process `pid` (None: no such process, or the kernel would not say).
    fn uid_of_pid(pid: PidT) -> Option<u32>;
    /// The uid the installer recorded as the owner (None: not recorded).
    fn recorded_owner() -> Option<u32>;
}

#[cfg(all(target_vendor = "apple", not(feature = "sim")))]
pub type Os = apple::AppleIdentity;
#[cfg(any(not(target_vendor = "apple"), feature = "sim"))]
pub type Os = fake::FakeIdentity;

/// Parses the owner file's text: one decimal uid, surrounding whitespace allowed. uid 0 (root)
/// is refused: root is not a desktop user, and a zeroed file must not mean "root owns it".
pub fn parse_owner(text: &str) -> Option<u32> {
    let uid: u32 = text.trim().parse().ok()?;
    (uid != 0 && uid != u32::MAX).then_some(uid)
}

#[cfg(test)]
mod tests {
    use super::parse_owner;

    #[test]
    fn owner_file_text() {
        assert_eq!(parse_owner("501\n"), Some(501));
        assert_eq!(parse_owner("  502 "), Some(502));
        for bad in ["", "0", "-1", "501 502", "4294967295", "abc", "5O1"] {
            assert_eq!(parse_owner(bad), None, "{bad:?}");
        }
    }
}
