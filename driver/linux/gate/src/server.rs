//! Which process the PipeWire server is, as the kernel says: the peer credentials of its socket.
//!
//! The gate's two nodes are made by the server itself (its filter-chain module, loaded from the
//! drop-in), so their client is the server's own client, whose `pipewire.sec.pid` PipeWire sets
//! from the socket's peer credentials too. Names and `hardmute.role` are properties any client
//! may give its own nodes; the server's pid is the one thing about a node's maker that no client
//! can claim. hardmuted and `hardmute check` trust a node as HardMute's only when its client's
//! pid is this one.

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

/// The sockets libpipewire would try for `remote` (`None`: `$PIPEWIRE_REMOTE`, else
/// `pipewire-0`), in order: a comma-separated list is tried name by name; an absolute name is
/// a path; any other name lives in `$PIPEWIRE_RUNTIME_DIR`, else `$XDG_RUNTIME_DIR`, else
/// `$USERPROFILE`.
pub fn socket_paths(remote: Option<&str>, env: impl Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let names = remote
        .map(str::to_owned)
        .or_else(|| env("PIPEWIRE_REMOTE").filter(|r| !r.is_empty()))
        .unwrap_or_else(|| "pipewire-0".to_owned());
    let dir = ["PIPEWIRE_RUNTIME_DIR", "XDG_RUNTIME_DIR", "USERPROFILE"]
        .iter()
        .find_map(|k| env(k).filter(|d| !d.is_empty()));
    names
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .filter_map(|n| {
            if Path::new(n).is_absolute() {
                Some(PathBuf::from(n))
            } else {
                dir.as_ref().map(|d| Path::new(d).join(n))
            }
        })
        .collect()
}

/// The pid of the PipeWire server behind the first of `paths` that accepts a connection: the
/// process listening on it (peer credentials) when that process runs PipeWire's own binary.
/// A socket-activated PipeWire's socket was made by the service manager (systemd), whose pid the
/// peer credentials then name; the server is then the one process running PipeWire's binary
/// that holds that same listening socket (systemd passed it the descriptor), found through
/// `/proc/net/unix` and `/proc/<pid>/fd`. No such process, or more than one: an error, and the
/// caller falls back to what it did without the pid.
pub fn server_pid_at(paths: &[PathBuf]) -> io::Result<u32> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no PipeWire socket to try");
    for path in paths {
        match UnixStream::connect(path) {
            Ok(stream) => {
                let pid = peer_pid(&stream)?;
                if runs_pipewire(pid) == Some(true) {
                    return Ok(pid);
                }
                let holders: Vec<u32> = listening_socket_holders(path)?
                    .into_iter()
                    .filter(|&p| runs_pipewire(p) == Some(true))
                    .collect();
                return match holders[..] {
                    [server] => Ok(server),
                    [] => Err(io::Error::other(format!(
                        "{} was made by pid {pid}, and no PipeWire process of this user holds it",
                        path.display()
                    ))),
                    _ => Err(io::Error::other(format!(
                        "{} was made by pid {pid}, and PipeWire processes {holders:?} all hold it",
                        path.display()
                    ))),
                };
            }
            Err(e) => last = io::Error::new(e.kind(), format!("{}: {e}", path.display())),
        }
    }
    Err(last)
}

/// Whether `pid` runs PipeWire's binary (`/proc/<pid>/exe`, the kernel's word, unlike the
/// process's name; `pipewire-pulse` is a link to `pipewire`). `None` if unreadable.
pub fn runs_pipewire(pid: u32) -> Option<bool> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    Some(
        exe.file_name()
            .is_some_and(|f| f == "pipewire" || f == "pipewire-pulse"),
    )
}

/// The PipeWire server this process's libpipewire connects to by default.
pub fn server_pid() -> io::Result<u32> {
    server_pid_at(&socket_paths(None, |k| std::env::var(k).ok()))
}

/// The processes (of those whose descriptors this process may read: its own user's) holding
/// a listening socket bound at `path`. The socket's inode is looked up in `/proc/net/unix` (this
/// network namespace's sockets), then matched against every `/proc/<pid>/fd/*` link
/// `socket:[inode]`.
pub fn listening_socket_holders(path: &Path) -> io::Result<Vec<u32>> {
    let table = std::fs::read_to_string("/proc/net/unix")?;
    let inodes = listening_inodes(&table, path);
    if inodes.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no listening socket bound at {}", path.display()),
        ));
    }
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    let mut holders = Vec::new();
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // Another user's process, or one that ended: its descriptors are not ours to read.
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path())
                .is_ok_and(|target| wanted.iter().any(|w| target.as_os_str() == w.as_str()))
        });
        if holds {
            holders.push(pid);
        }
    }
    Ok(holders)
}

/// The inodes of the listening sockets bound at `path` in a `/proc/net/unix` table
/// (`Num RefCount Protocol Flags Type St Inode Path`; a listening socket has `__SO_ACCEPTCON`,
/// 0x10000, in its flags).
fn listening_inodes(table: &str, path: &Path) -> Vec<u64> {
    const ACCEPTCON: u32 = 0x10000;
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [_, _, _, flags, _, _, inode, bound] = fields[..] else {
                return None;
            };
            let listening = u32::from_str_radix(flags, 16).ok()? & ACCEPTCON != 0;
            (listening && Path::new(bound) == path).then(|| inode.parse().ok())?
        })
        .collect()
}

/// `SO_PEERCRED`: for a connected stream socket, the process that called `listen` (in this
/// process's pid namespace).
fn peer_pid(stream: &UnixStream) -> io::Result<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cred`, a live ucred, on our own fd.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    u32::try_from(cred.pid)
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(|| io::Error::other("the socket's peer has no pid"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn the_socket_is_found_where_libpipewire_looks() {
        let p = |r, e: &[(&str, &str)]| socket_paths(r, env(e));
        assert_eq!(
            p(None, &[("XDG_RUNTIME_DIR", "/run/user/1000")]),
            [PathBuf::from("/run/user/1000/pipewire-0")]
        );
        assert_eq!(
            p(
                None,
                &[
                    ("XDG_RUNTIME_DIR", "/run/user/1000"),
                    ("PIPEWIRE_RUNTIME_DIR", "/tmp/pw"),
                    ("PIPEWIRE_REMOTE", "pipewire-0-manager,pipewire-0")
                ]
            ),
            [
                PathBuf::from("/tmp/pw/pipewire-0-manager"),
                PathBuf::from("/tmp/pw/pipewire-0")
            ]
        );
        assert_eq!(
            p(Some("/abs/sock"), &[("PIPEWIRE_REMOTE", "other")]),
            [PathBuf::from("/abs/sock")]
        );
        assert!(p(None, &[]).is_empty(), "no runtime dir: nothing to try");
    }

    #[test]
    fn the_pid_is_the_listening_process_and_must_run_pipewire() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pipewire-0");
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let stream = UnixStream::connect(&path).unwrap();
        assert_eq!(
            peer_pid(&stream).unwrap(),
            std::process::id(),
            "the listening process, by the kernel's word"
        );
        // The listener is this test program, which holds the socket itself: it is the only
        // holder found, by its descriptor.
        assert_eq!(
            listening_socket_holders(&path).unwrap(),
            [std::process::id()]
        );
        // Neither the listener nor any holder runs PipeWire (as systemd would be for a
        // socket-activated PipeWire whose server is gone): refused, naming the pid.
        let err = server_pid_at(&[dir.path().join("gone"), path.clone()]).unwrap_err();
        assert!(
            err.to_string().contains(&std::process::id().to_string())
                && err.to_string().contains("no PipeWire process"),
            "{err}"
        );
        assert!(listening_socket_holders(&dir.path().join("gone")).is_err());
        let err = server_pid_at(&[dir.path().join("gone")]).unwrap_err();
        assert!(err.to_string().contains("gone"), "{err}");
    }

    #[test]
    fn listening_sockets_are_told_from_connections_by_their_flags() {
        let table = "Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0001 01 41234 /run/user/1000/pipewire-0
0000000000000000: 00000003 00000000 00000000 0001 03 41240 /run/user/1000/pipewire-0
0000000000000000: 00000002 00000000 00010000 0001 01 41299 /run/user/1000/pipewire-0-manager
0000000000000000: 00000003 00000000 00000000 0001 03  1162
0000000000000000: 00000002 00000000 00010000 0001 01 bad /run/user/1000/pipewire-0
";
        assert_eq!(
            listening_inodes(table, Path::new("/run/user/1000/pipewire-0")),
            [41234]
        );
        assert_eq!(
            listening_inodes(table, Path::new("/run/user/1000/pipewire-0-manager")),
            [41299]
        );
        assert!(listening_inodes(table, Path::new("/run/user/1000/pulse/native")).is_empty());
    }
}
