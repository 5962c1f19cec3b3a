//! The real identity sources on macOS: libproc for a pid's uid, the bundle's owner file.

use super::{parse_owner, Identity, OWNER_FILE};
use crate::abi::PidT;
use core::ffi::{c_int, c_void};

/// `PROC_PIDT_SHORTBSDINFO` (sys/proc_info.h): allowed for processes of other users, unlike
/// `PROC_PIDTBSDINFO`.
const PROC_PIDT_SHORTBSDINFO: c_int = 13;

/// `struct proc_bsdshortinfo` (sys/proc_info.h).
#[repr(C)]
#[derive(Default)]
struct ProcBsdShortInfo {
    pbsi_pid: u32,
    pbsi_ppid: u32,
    pbsi_pgid: u32,
    pbsi_status: u32,
    pbsi_comm: [u8; 16],
    pbsi_flags: u32,
    pbsi_uid: u32,
    pbsi_gid: u32,
    pbsi_ruid: u32,
    pbsi_rgid: u32,
    pbsi_svuid: u32,
    pbsi_svgid: u32,
    pbsi_rfu: u32,
}

const _: () = {
    assert!(core::mem::size_of::<ProcBsdShortInfo>() == 64);
    assert!(core::mem::offset_of!(ProcBsdShortInfo, pbsi_uid) == 36);
    assert!(core::mem::offset_of!(ProcBsdShortInfo, pbsi_ruid) == 44);
};

unsafe extern "C" {
    /// libproc.h (libSystem).
    fn proc_pidinfo(pid: c_int, flavor: c_int, arg: u64, buffer: *mut c_void, size: c_int)
        -> c_int;
}

pub struct AppleIdentity;

impl Identity for AppleIdentity {
    fn uid_of_pid(pid: PidT) -> Option<u32> {
        if pid <= 0 {
            return None;
        }
        let mut info = ProcBsdShortInfo::default();
        let size = core::mem::size_of::<ProcBsdShortInfo>() as c_int;
        // SAFETY: `info` is writable for `size` bytes; the kernel writes at most that many.
        let got =
            unsafe { proc_pidinfo(pid, PROC_PIDT_SHORTBSDINFO, 0, (&raw mut info).cast(), size) };
        // A process that changed uid (setuid) counts as neither unless both agree.
        (got == size && info.pbsi_pid == pid as u32 && info.pbsi_uid == info.pbsi_ruid)
            .then_some(info.pbsi_uid)
    }

    fn recorded_owner() -> Option<u32> {
        std::fs::read_to_string(OWNER_FILE)
            .ok()
            .as_deref()
            .and_then(parse_owner)
    }
}
