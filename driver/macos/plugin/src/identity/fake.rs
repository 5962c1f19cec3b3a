//! A stand-in for the kernel's process table and the installer's owner file, set by tests
//! (the simulated coreaudiod plays several users with it).

use super::Identity;
use crate::abi::PidT;
use parking_lot::Mutex;

static PIDS: Mutex<Vec<(PidT, u32)>> = Mutex::new(Vec::new());
static OWNER: Mutex<Option<u32>> = Mutex::new(None);

pub struct FakeIdentity;

impl Identity for FakeIdentity {
    fn uid_of_pid(pid: PidT) -> Option<u32> {
        PIDS.lock().iter().find(|(p, _)| *p == pid).map(|(_, u)| *u)
    }
    fn recorded_owner() -> Option<u32> {
        *OWNER.lock()
    }
}

/// Process `pid` runs as `uid` (replaces an earlier entry for the pid).
pub fn set_process(pid: PidT, uid: u32) {
    let mut pids = PIDS.lock();
    pids.retain(|(p, _)| *p != pid);
    pids.push((pid, uid));
}

/// Process `pid` has exited.
pub fn remove_process(pid: PidT) {
    PIDS.lock().retain(|(p, _)| *p != pid);
}

/// What the installer recorded (read by the plug-in at Initialize).
pub fn set_recorded_owner(uid: Option<u32>) {
    *OWNER.lock() = uid;
}
