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
        let dir = match dir.or_else(|| std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from)) {
            Some(dir) => dir,
            None => private_temp_dir()?,
        };
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

/// Without `$XDG_RUNTIME_DIR`: `<tmp>/hardmute-<uid>/`, 0700 and ours (the directory the IPC
/// socket uses then), never a fixed name in the shared temp directory, where another user could
/// pre-create the lock file and keep this user's daemon from ever starting.
fn private_temp_dir() -> Result<PathBuf, Error> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    let dir = std::env::temp_dir().join(format!("hardmute-{uid}"));
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Error::Lock(format!("{}: {e}", dir.display()))),
    }
    let meta = std::fs::symlink_metadata(&dir)
        .map_err(|e| Error::Lock(format!("{}: {e}", dir.display())))?;
    if !meta.file_type().is_dir() || meta.uid() != uid || meta.mode() & 0o077 != 0 {
        return Err(Error::Lock(format!(
            "{} is not a private directory of uid {uid}; refusing to keep the lock there",
            dir.display()
        )));
    }
    Ok(dir)
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

    #[test]
    fn without_a_runtime_dir_the_lock_lives_in_a_private_per_user_dir() {
        use std::os::unix::fs::MetadataExt;
        let dir = private_temp_dir().unwrap();
        // SAFETY: no preconditions.
        let uid = unsafe { libc::geteuid() };
        assert!(dir.ends_with(format!("hardmute-{uid}")));
        let meta = std::fs::metadata(&dir).unwrap();
        assert_eq!((meta.uid(), meta.mode() & 0o777), (uid, 0o700));
    }
}
