//! One controller per user session: an flock in `$XDG_RUNTIME_DIR`, held while the daemon runs.
//! Two controllers would fight over the links and the lease; the kernel releases the lock
//! when the process dies, even by SIGKILL, so a restart is never blocked.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use crate::Error;

pub const LOCK_FILE: &str = "hardmute-pipewire.lock";

pub struct InstanceLock {
    _file: File,
}

impl InstanceLock {
    pub fn acquire(dir: Option<PathBuf>) -> Result<InstanceLock, Error> {
        let dir = dir
            .or_else(|| std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from))
            .unwrap_or_else(std::env::temp_dir);
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::Lock(format!("{}: {e}", path.display())))?;
        // SAFETY: flock on an fd we own; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            return Err(Error::AlreadyRunning(path));
        }
        Ok(InstanceLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_and_released_on_drop() {
        let dir = std::env::temp_dir().join(format!("hm-lock-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let first = InstanceLock::acquire(Some(dir.clone())).unwrap();
        assert!(matches!(
            InstanceLock::acquire(Some(dir.clone())),
            Err(Error::AlreadyRunning(_))
        ));
        drop(first);
        assert!(InstanceLock::acquire(Some(dir.clone())).is_ok());
        let _ = std::fs::remove_dir_all(dir);
    }
}
