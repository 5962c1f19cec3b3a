//! One panel per user: a second start (the autostart entry and a menu click, or two clicks)
//! asks the running panel to show its window and exits, instead of opening a second window,
//! tray icon and hotkey grab.
//!
//! - **Who runs first:** an exclusive lock on a lock file (`File::try_lock`: `flock` on Linux
//!   and macOS, `LockFileEx` on Windows), held for the panel's lifetime and released by the OS
//!   when the process ends however it ends, so a crashed panel never blocks the next one. Linux
//!   and macOS: `hardmute-panel.lock` in the daemon socket's private per-user directory
//!   (`$XDG_RUNTIME_DIR/hardmute`, or the per-uid temp dir; 0700, checked by `hardmute-ipc`).
//!   Windows: `panel.lock` in the user's Local AppData (`hardmute\data`, beside the daemon's
//!   state).
//! - **"Show yourself":** the first panel listens on a per-user local socket made by the same
//!   code as the daemon's (`crate::transport::SocketListener`: a 0600 Unix socket in that
//!   private directory; on Windows the named pipe `\\.\pipe\hardmute-panel-<SID>` whose DACL
//!   admits only this user and SYSTEM), and checks that the peer is the same user. The second
//!   panel connects, writes `show`, waits for `ok` and exits 0.

use crate::transport::{Connection, PeerCheck, SocketListener};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What the second instance sends.
const SHOW: &str = "show";
/// How long a second instance keeps trying to reach the first (which may be starting up).
const REACH_FOR: Duration = Duration::from_secs(5);

/// Where the lock file and the "show" socket are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paths {
    pub lock: PathBuf,
    pub socket: PathBuf,
}

impl Paths {
    /// Beside the daemon's socket `daemon_socket` (its private per-user directory) on Linux
    /// and macOS; Local AppData and a SID-named pipe on Windows.
    pub fn for_daemon_socket(daemon_socket: &Path) -> io::Result<Self> {
        #[cfg(windows)]
        {
            let _ = daemon_socket;
            let dirs = directories::ProjectDirs::from("", "", "hardmute")
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no home directory"))?;
            let dir = dirs.data_local_dir();
            std::fs::create_dir_all(dir)?;
            let sid = crate::transport::current_user_sid()?;
            Ok(Self {
                lock: dir.join("panel.lock"),
                socket: PathBuf::from(format!(r"\\.\pipe\hardmute-panel-{sid}")),
            })
        }
        #[cfg(not(windows))]
        {
            Ok(Self::in_dir(
                daemon_socket
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .unwrap_or(Path::new(".")),
            ))
        }
    }

    /// `hardmute-panel.lock` and `hardmute-panel.sock` in `dir` (tests; Linux and macOS).
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            lock: dir.join("hardmute-panel.lock"),
            socket: dir.join("hardmute-panel.sock"),
        }
    }
}

/// The outcome of [`claim`].
pub enum Claim {
    /// This is the first panel: keep the guard for the process's lifetime.
    First(Guard),
    /// Another panel of this user runs; it was asked to show its window (`Ok`) or could not
    /// be reached (`Err`, why).
    Second(Result<(), String>),
}

/// Held by the first panel: the lock, and the listener thread (which ends with the process).
pub struct Guard {
    _lock: File,
    pub socket: Option<PathBuf>,
}

/// Takes the per-user lock, or asks the panel holding it to show itself. `on_show` runs on the
/// listener thread each time a second instance asks (post to the UI thread from there).
pub fn claim(paths: &Paths, on_show: impl Fn() + Send + 'static) -> io::Result<Claim> {
    // The private directory exists and is ours before anything is created in it.
    crate::transport::prepare_socket_dir(&paths.socket)?;
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&paths.lock)?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(Claim::Second(ask_to_show(&paths.socket))),
        Err(TryLockError::Error(e)) => return Err(e),
    }
    // A socket left by a crashed panel is replaced; no panel can serve it (we hold the lock).
    let socket = match SocketListener::bind(&paths.socket) {
        Ok(listener) => {
            let path = listener.path().to_owned();
            std::thread::Builder::new()
                .name("hardmute-panel-single".into())
                .spawn(move || serve(listener, on_show))?;
            Some(path)
        }
        Err(e) => {
            // Still the only panel; a second start then only says so and exits.
            log::warn!(
                "cannot listen on {} ({e}): a second start cannot raise this panel",
                paths.socket.display()
            );
            None
        }
    };
    Ok(Claim::First(Guard {
        _lock: lock,
        socket,
    }))
}

fn serve(listener: SocketListener, on_show: impl Fn()) {
    loop {
        let connection = match listener.accept() {
            Ok(c) => c,
            Err(e) => {
                log::warn!("single-instance socket: {e}");
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
        };
        match connection.check_peer() {
            Ok(PeerCheck::SameUser { .. }) => {}
            Ok(PeerCheck::OtherUser { who }) => {
                log::warn!("ignoring a show request from {who}");
                continue;
            }
            Err(e) => {
                log::warn!("single-instance socket: cannot check the peer: {e}");
                continue;
            }
        }
        let _ = connection.set_recv_timeout(Some(Duration::from_secs(2)));
        let mut reply = connection.clone();
        let mut line = String::new();
        if BufReader::new(connection).read_line(&mut line).is_ok() && line.trim() == SHOW {
            log::info!("another start of the panel asked to show this one");
            on_show();
            let _ = reply.write_all(b"ok\n");
        }
    }
}

/// The second instance: asks the first to show its window (retrying while the first is still
/// starting up and has the lock but no socket yet).
pub fn ask_to_show(socket: &Path) -> Result<(), String> {
    let deadline = Instant::now() + REACH_FOR;
    loop {
        match send_show(socket) {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() >= deadline => {
                return Err(format!("cannot reach it at {}: {e}", socket.display()))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn send_show(socket: &Path) -> io::Result<()> {
    let mut connection = Connection::connect(socket)?;
    connection.set_recv_timeout(Some(Duration::from_secs(2)))?;
    connection.write_all(format!("{SHOW}\n").as_bytes())?;
    connection.flush()?;
    let mut line = String::new();
    BufReader::new(connection).read_line(&mut line)?;
    if line.trim() == "ok" {
        Ok(())
    } else {
        Err(io::Error::other(format!("unexpected answer {line:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A private lock file and "show" socket: in `dir` on Linux and macOS; on Windows the lock in
    /// `dir` and a pipe name of this test run (Windows pipes live outside the file system).
    fn test_paths(dir: &Path) -> Paths {
        #[cfg(windows)]
        {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            Paths {
                lock: dir.join("panel.lock"),
                socket: PathBuf::from(format!(
                    r"\\.\pipe\hardmute-panel-test-{}-{nanos}",
                    std::process::id()
                )),
            }
        }
        #[cfg(not(windows))]
        {
            Paths::in_dir(dir)
        }
    }

    #[test]
    fn the_second_claim_asks_the_first_to_show_and_a_dead_first_frees_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let paths = test_paths(dir.path());
        let shown = Arc::new(AtomicUsize::new(0));
        let counter = shown.clone();
        let first = claim(&paths, move || {
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
        let Claim::First(guard) = first else {
            panic!("the first claim must win the lock")
        };
        assert_eq!(guard.socket.as_deref(), Some(paths.socket.as_path()));
        for asked in 1..=2 {
            match claim(&paths, || panic!("a second instance never serves")).unwrap() {
                Claim::Second(Ok(())) => {}
                Claim::Second(Err(e)) => panic!("the first panel was not reached: {e}"),
                Claim::First(_) => panic!("two panels got the lock"),
            }
            assert_eq!(
                shown.load(Ordering::SeqCst),
                asked,
                "the first was asked to show"
            );
        }
        // The lock goes with the file (as when the process ends, however it ends).
        drop(guard);
        assert!(
            matches!(claim(&paths, || {}).unwrap(), Claim::First(_)),
            "a dead panel's lock must not block"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_socket_left_by_a_crashed_panel_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::in_dir(dir.path());
        // A socket file nobody listens on any more (std does not unlink it on drop).
        drop(std::os::unix::net::UnixListener::bind(&paths.socket).unwrap());
        assert!(paths.socket.exists());
        let shown = Arc::new(AtomicUsize::new(0));
        let counter = shown.clone();
        let Claim::First(guard) = claim(&paths, move || {
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap() else {
            panic!("no live panel: this one is first")
        };
        assert!(guard.socket.is_some(), "the stale socket is replaced");
        assert_eq!(ask_to_show(&paths.socket), Ok(()));
        assert_eq!(shown.load(Ordering::SeqCst), 1);
    }
}
