//! Where the socket lives, who may use it, and the connection type both sides share.
//!
//! Unix: `hardmute.sock` in a directory only the user can enter (`$XDG_RUNTIME_DIR/hardmute/`,
//! else `/tmp/hardmute-<uid>/`, created 0700 and refused if someone else owns it), socket file
//! 0600 where the OS honours it, and every accepted peer's uid checked against ours — the last
//! check holds even if the directory or file permissions are loosened. Both ways: a client checks
//! the server's uid too (`SO_PEERCRED` of the connected socket), so a process of another user
//! holding the socket name (an overridden path, a loosened directory) is refused before a byte
//! is read from it — it could otherwise answer "MUTED" while the mic is live.
//!
//! Windows (run under wine only, not on Windows — see `platform` below): a named pipe
//! `\\.\pipe\hardmute-<user SID>` (the SID, not the user name: names are not unique across
//! domains and are easy to pre-create) whose security descriptor grants access to the user and
//! SYSTEM only. Clients open it with `SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION`, so a
//! squatting server can learn who connected but cannot act as them (the driver refuses
//! identification-level tokens), and they check the server's process user
//! (`GetNamedPipeServerProcessId` + its token) before reading anything.
//!
//! `HARDMUTE_SOCKET` overrides the path on both sides (tests use it).

use interprocess::local_socket::{prelude::*, GenericFilePath, ListenerOptions, Stream};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Environment variable overriding the socket path (or pipe name on Windows).
pub const SOCKET_ENV: &str = "HARDMUTE_SOCKET";
/// The socket's file name inside the runtime directory.
pub const SOCKET_FILE: &str = "hardmute.sock";

/// The socket path to use: `$HARDMUTE_SOCKET` if set, else the per-user default.
/// The calling process's user SID in string form (`S-1-5-21-…`): what the pipe is named by, and
/// the owner the Windows installer records for the driver.
#[cfg(windows)]
pub fn current_user_sid() -> io::Result<String> {
    platform::sid::current_user_sid_string()
}

pub fn socket_path() -> io::Result<PathBuf> {
    match std::env::var_os(SOCKET_ENV) {
        Some(path) if !path.is_empty() => Ok(PathBuf::from(path)),
        _ => default_socket_path(),
    }
}

/// The per-user default socket path (does not create anything).
pub fn default_socket_path() -> io::Result<PathBuf> {
    platform::default_socket_path()
}

/// Server side: makes sure the default socket directory exists, is ours and is private.
/// For an overridden path only the parent's existence is checked: whoever chose the path chose
/// its permissions, and the peer-credential check still applies.
pub fn prepare_socket_dir(socket: &Path) -> io::Result<()> {
    platform::prepare_socket_dir(socket)
}

/// Client side: refuses a default socket whose directory someone else owns (a stranger could
/// otherwise pose as the daemon and report "muted" while it is not).
pub fn check_socket_dir(socket: &Path) -> io::Result<()> {
    platform::check_socket_dir(socket)
}

/// A connected stream both threads of a connection can use: `&Stream` reads and writes.
#[derive(Clone, Debug)]
pub struct Connection(Arc<Stream>);

impl Connection {
    /// Connects and verifies that the server runs as this process's user; a server of another
    /// user is refused (`PermissionDenied`, naming who serves it).
    pub fn connect(path: &Path) -> io::Result<Self> {
        let connection = Self(Arc::new(platform::connect(path)?));
        match platform::check_peer(&connection.0)? {
            PeerCheck::SameUser { .. } => Ok(connection),
            PeerCheck::OtherUser { who } => Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} is served by {who}, not by a hardmuted of your user; refusing to talk to it",
                    path.display()
                ),
            )),
        }
    }

    /// Sets the receive timeout where the transport has one. Windows named pipes have none
    /// (`interprocess` reports Unsupported): there a read simply blocks, which is accepted.
    pub fn set_recv_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        ignore_unsupported(self.0.set_recv_timeout(timeout))
    }

    /// Sets the send timeout where the transport has one (see [`Self::set_recv_timeout`]).
    pub fn set_send_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        ignore_unsupported(self.0.set_send_timeout(timeout))
    }

    /// Whether the peer runs as the same user as this process.
    pub fn check_peer(&self) -> io::Result<PeerCheck> {
        platform::check_peer(&self.0)
    }
}

fn ignore_unsupported(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::Unsupported => Ok(()),
        other => other,
    }
}

impl Read for Connection {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self.0).read(buf)
    }
}

impl Write for Connection {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self.0).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        (&*self.0).flush()
    }
}

/// The outcome of the peer-credential check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerCheck {
    SameUser {
        pid: Option<u32>,
    },
    /// Another user; `who` describes the peer for the log.
    OtherUser {
        who: String,
    },
}

/// The daemon's listening socket. Dropping it removes the socket file.
pub struct SocketListener {
    inner: interprocess::local_socket::Listener,
    path: PathBuf,
}

impl SocketListener {
    /// Binds `path`. If a socket file is already there and a daemon answers on it, fails with
    /// `AddrInUse`; a stale file left by a crashed daemon is replaced.
    pub fn bind(path: &Path) -> io::Result<Self> {
        prepare_socket_dir(path)?;
        if Connection::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("another hardmuted is already serving {}", path.display()),
            ));
        }
        let inner = platform::create_listener(|| {
            let name = path.to_fs_name::<GenericFilePath>()?;
            Ok(ListenerOptions::new()
                .name(name)
                .try_overwrite(true)
                .reclaim_name(true))
        })?;
        Ok(Self {
            inner,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Blocks until a client connects. The caller checks the peer with
    /// [`Connection::check_peer`] before reading anything from it.
    pub fn accept(&self) -> io::Result<Connection> {
        Ok(Connection(Arc::new(self.inner.accept()?)))
    }
}

#[cfg(unix)]
mod platform {
    use super::*;
    use interprocess::os::unix::local_socket::ListenerOptionsExt;
    use std::fs;
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};

    fn euid() -> u32 {
        nix::unistd::geteuid().as_raw()
    }

    pub fn connect(path: &Path) -> io::Result<Stream> {
        Stream::connect(path.to_fs_name::<GenericFilePath>()?)
    }

    pub fn default_socket_path() -> io::Result<PathBuf> {
        Ok(default_socket_dir().join(SOCKET_FILE))
    }

    fn default_socket_dir() -> PathBuf {
        match std::env::var_os("XDG_RUNTIME_DIR") {
            Some(dir) if Path::new(&dir).is_absolute() => Path::new(&dir).join("hardmute"),
            _ => std::env::temp_dir().join(format!("hardmute-{}", euid())),
        }
    }

    fn is_default(socket: &Path) -> bool {
        std::env::var_os(SOCKET_ENV).is_none_or(|v| v.is_empty())
            && socket.parent() == Some(default_socket_dir().as_path())
    }

    /// The directory must be a real directory (not a symlink), owned by us, with no access for
    /// group or others.
    pub(crate) fn verify_private_dir(dir: &Path) -> io::Result<()> {
        let meta = fs::symlink_metadata(dir)?;
        if !meta.file_type().is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} is not a directory; refusing to use it for the hardmute socket",
                    dir.display()
                ),
            ));
        }
        if meta.uid() != euid() {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} is owned by uid {}, not by you (uid {}); refusing to use it for the hardmute socket",
                    dir.display(),
                    meta.uid(),
                    euid()
                ),
            ));
        }
        if meta.mode() & 0o077 != 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} is accessible to other users (mode {:o})",
                    dir.display(),
                    meta.mode() & 0o777
                ),
            ));
        }
        Ok(())
    }

    pub fn prepare_socket_dir(socket: &Path) -> io::Result<()> {
        let dir = socket
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !is_default(socket) {
            if !dir.is_dir() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("socket directory {} does not exist", dir.display()),
                ));
            }
            return Ok(());
        }
        ensure_private_dir(dir)
    }

    /// Creates `dir` 0700, or accepts an existing one that is ours (tightening its mode if
    /// needed); refuses one that is not a directory or belongs to someone else.
    pub(crate) fn ensure_private_dir(dir: &Path) -> io::Result<()> {
        match fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                // Ours but too open (e.g. created by an old version): tighten it. Someone
                // else's: refuse, verify_private_dir says why.
                let meta = fs::symlink_metadata(dir)?;
                if meta.file_type().is_dir() && meta.uid() == euid() && meta.mode() & 0o077 != 0 {
                    log::warn!(
                        "{} was accessible to other users; setting it to 0700",
                        dir.display()
                    );
                    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
                }
            }
            Err(e) => return Err(e),
        }
        verify_private_dir(dir)
    }

    pub fn check_socket_dir(socket: &Path) -> io::Result<()> {
        match socket.parent() {
            Some(dir) if is_default(socket) => verify_private_dir(dir),
            _ => Ok(()),
        }
    }

    pub fn create_listener<'a>(
        options: impl Fn() -> io::Result<ListenerOptions<'a>>,
    ) -> io::Result<interprocess::local_socket::Listener> {
        // 0600 where the OS applies a mode to socket files (Linux does); elsewhere the private
        // directory and the peer check do the job.
        match options()?.mode(0o600).create_sync() {
            Err(e) if e.kind() == io::ErrorKind::Unsupported => options()?.create_sync(),
            other => other,
        }
    }

    pub fn check_peer(stream: &Stream) -> io::Result<PeerCheck> {
        let creds = stream.peer_creds()?;
        let pid = creds.pid().and_then(|p| u32::try_from(p).ok());
        match creds.euid() {
            Some(uid) if uid == euid() => Ok(PeerCheck::SameUser { pid }),
            Some(uid) => Ok(PeerCheck::OtherUser {
                who: match pid {
                    Some(pid) => format!("uid {uid} (pid {pid})"),
                    None => format!("uid {uid}"),
                },
            }),
            // Fail closed: an unknown peer is not the user.
            None => Ok(PeerCheck::OtherUser {
                who: "a peer whose uid the OS did not report".into(),
            }),
        }
    }
}

/// WINDOWS STATUS: type-checked for x86_64-pc-windows-msvc; built for x86_64-pc-windows-gnu and
/// run under wine 8, where hardmuted's IPC tests (userspace/daemon/tests/ipc.rs) pass over this named pipe with
/// this security descriptor and the same-user SID check. NOT verified: that the DACL or the SID
/// check refuses another user (wine has one user and does not enforce DACLs), and anything on
/// real Windows.
#[cfg(windows)]
mod platform {
    use super::*;
    use interprocess::os::windows::{
        local_socket::ListenerOptionsExt, security_descriptor::SecurityDescriptor,
    };
    use widestring::U16CString;

    pub fn default_socket_path() -> io::Result<PathBuf> {
        let sid = sid::current_user_sid_string()?;
        Ok(PathBuf::from(format!(r"\\.\pipe\hardmute-{sid}")))
    }

    /// Opens the pipe with an identification-level security QoS: the server may query who we
    /// are but cannot impersonate us to do anything (e.g. speak to the driver as us).
    pub fn connect(path: &Path) -> io::Result<Stream> {
        use std::os::windows::io::{FromRawHandle, OwnedHandle};
        use windows_sys::Win32::Foundation::{
            ERROR_PIPE_BUSY, GENERIC_READ, GENERIC_WRITE, INVALID_HANDLE_VALUE,
        };
        use windows_sys::Win32::Storage::FileSystem::{
            CreateFileW, FILE_FLAG_OVERLAPPED, OPEN_EXISTING, SECURITY_IDENTIFICATION,
            SECURITY_SQOS_PRESENT,
        };
        use windows_sys::Win32::System::Pipes::WaitNamedPipeW;
        let wide = U16CString::from_os_str(path.as_os_str())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        for _ in 0..20 {
            // SAFETY: a NUL-terminated path; no security attributes or template; the handle is
            // checked before it is owned.
            let handle = unsafe {
                CreateFileW(
                    wide.as_ptr(),
                    GENERIC_READ | GENERIC_WRITE,
                    0,
                    std::ptr::null(),
                    OPEN_EXISTING,
                    FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION,
                    std::ptr::null_mut(),
                )
            };
            if handle != INVALID_HANDLE_VALUE {
                // SAFETY: a fresh handle we own from here on.
                let owned = unsafe { OwnedHandle::from_raw_handle(handle) };
                let stream =
                    interprocess::os::windows::named_pipe::local_socket::Stream::try_from(owned)
                        .map_err(|e| io::Error::other(e.to_string()))?;
                return Ok(Stream::from(stream));
            }
            let error = io::Error::last_os_error();
            if error.raw_os_error() != Some(ERROR_PIPE_BUSY as i32) {
                return Err(error);
            }
            // All instances busy: wait a little for one (bounded by the loop).
            // SAFETY: NUL-terminated path.
            unsafe { WaitNamedPipeW(wide.as_ptr(), 100) };
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "every pipe instance stayed busy",
        ))
    }

    pub fn prepare_socket_dir(_socket: &Path) -> io::Result<()> {
        Ok(())
    }

    pub fn check_socket_dir(_socket: &Path) -> io::Result<()> {
        Ok(())
    }

    pub fn create_listener<'a>(
        options: impl Fn() -> io::Result<ListenerOptions<'a>>,
    ) -> io::Result<interprocess::local_socket::Listener> {
        // Protected DACL: full access for SYSTEM and for the user running the daemon, nobody
        // else (no inherited ACEs, no Everyone, no Administrators).
        let sid = sid::current_user_sid_string()?;
        let sddl = U16CString::from_str(format!("D:P(A;;GA;;;SY)(A;;GA;;;{sid})"))
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let descriptor = SecurityDescriptor::deserialize(&sddl)?;
        options()?.security_descriptor(descriptor).create_sync()
    }

    pub fn check_peer(stream: &Stream) -> io::Result<PeerCheck> {
        // The pipe's DACL already keeps other users out; this is the second lock. The peer's
        // process id comes from GetNamedPipeClientProcessId on the server side and
        // GetNamedPipeServerProcessId on the client side (through interprocess); its token's
        // user SID must be ours. A process we may not open (another user's) is refused.
        // Known limit: a pid can be reused if the client exits while its pipe handle lives on
        // in an inheriting child; the DACL still applies then.
        let pid: Option<u32> = stream.peer_creds()?.pid();
        let Some(pid) = pid else {
            return Ok(PeerCheck::OtherUser {
                who: "a client whose process id Windows did not report".into(),
            });
        };
        let ours = sid::current_user_sid_string()?;
        match sid::process_user_sid_string(pid) {
            Ok(theirs) if theirs == ours => Ok(PeerCheck::SameUser { pid: Some(pid) }),
            Ok(theirs) => Ok(PeerCheck::OtherUser {
                who: format!("{theirs} (pid {pid})"),
            }),
            Err(e) => Ok(PeerCheck::OtherUser {
                who: format!("pid {pid}, whose user could not be read: {e}"),
            }),
        }
    }

    /// The one unsafe corner: reading a process's user SID as a string.
    pub(super) mod sid {
        use std::io;
        use windows_sys::Win32::Foundation::{CloseHandle, LocalFree, HANDLE};
        use windows_sys::Win32::Security::Authorization::ConvertSidToStringSidW;
        use windows_sys::Win32::Security::{
            GetTokenInformation, TokenUser, TOKEN_QUERY, TOKEN_USER,
        };
        use windows_sys::Win32::System::Threading::{
            GetCurrentProcess, OpenProcess, OpenProcessToken, PROCESS_QUERY_LIMITED_INFORMATION,
        };

        pub fn current_user_sid_string() -> io::Result<String> {
            let mut token: HANDLE = std::ptr::null_mut();
            // SAFETY: GetCurrentProcess returns a pseudo-handle; `token` is a valid out pointer.
            if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) } == 0 {
                return Err(io::Error::last_os_error());
            }
            let result = token_user_sid(token);
            // SAFETY: `token` was opened above and is closed exactly once.
            unsafe { CloseHandle(token) };
            result
        }

        /// The user SID of process `pid`, as a string.
        pub fn process_user_sid_string(pid: u32) -> io::Result<String> {
            // SAFETY: plain call; a null handle (failure) is checked before use.
            let process = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
            if process.is_null() {
                return Err(io::Error::last_os_error());
            }
            let mut token: HANDLE = std::ptr::null_mut();
            // SAFETY: `process` is a valid handle opened above; `token` is a valid out pointer.
            let opened = unsafe { OpenProcessToken(process, TOKEN_QUERY, &mut token) } != 0;
            let result = if opened {
                token_user_sid(token)
            } else {
                Err(io::Error::last_os_error())
            };
            // SAFETY: each handle was opened above and is closed exactly once.
            unsafe {
                if opened {
                    CloseHandle(token);
                }
                CloseHandle(process);
            }
            result
        }

        fn token_user_sid(token: HANDLE) -> io::Result<String> {
            // TOKEN_USER plus the SID it points into; u64 storage keeps it aligned.
            let mut buffer = [0u64; 64];
            let mut needed = 0u32;
            let size = std::mem::size_of_val(&buffer) as u32;
            // SAFETY: the buffer is writable for `size` bytes and suitably aligned for TOKEN_USER.
            let ok = unsafe {
                GetTokenInformation(
                    token,
                    TokenUser,
                    buffer.as_mut_ptr().cast(),
                    size,
                    &mut needed,
                )
            };
            if ok == 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: on success the buffer starts with a TOKEN_USER whose SID lies inside it.
            let sid = unsafe { (*buffer.as_ptr().cast::<TOKEN_USER>()).User.Sid };
            let mut wide: *mut u16 = std::ptr::null_mut();
            // SAFETY: `sid` is valid while `buffer` lives; `wide` is an out pointer freed below.
            if unsafe { ConvertSidToStringSidW(sid, &mut wide) } == 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: ConvertSidToStringSidW returned a NUL-terminated UTF-16 string.
            let text = unsafe { widestring::U16CStr::from_ptr_str(wide) }.to_string_lossy();
            // SAFETY: the string was allocated by ConvertSidToStringSidW with LocalAlloc.
            unsafe { LocalFree(wide.cast()) };
            Ok(text)
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::platform::{ensure_private_dir, verify_private_dir};
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn private_dir_is_created_0700_and_a_loose_one_of_ours_is_tightened() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("hardmute");
        ensure_private_dir(&dir).unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(
            verify_private_dir(&dir).is_err(),
            "0755 must not pass as private"
        );
        ensure_private_dir(&dir).unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
    }

    #[test]
    fn symlink_or_file_in_place_of_the_dir_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("elsewhere");
        fs::create_dir(&target).unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o700)).unwrap();
        let link = root.path().join("hardmute");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(ensure_private_dir(&link).is_err());
        let file = root.path().join("file");
        fs::write(&file, b"").unwrap();
        assert!(ensure_private_dir(&file).is_err());
    }

    #[test]
    fn dir_owned_by_another_user_is_refused() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIPPED dir_owned_by_another_user_is_refused: needs root to chown a dir to another uid");
            return;
        }
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("hardmute");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
        let err = ensure_private_dir(&dir).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
        assert!(err.to_string().contains("owned by uid 65534"), "{err}");
        // And it was left alone.
        assert_eq!(fs::metadata(&dir).unwrap().uid(), 65534);
    }

    /// The child half of the next test: serves the given socket path as whatever uid it was
    /// started with, answering every client with a "muted" state line.
    #[test]
    fn foreign_server_child() {
        use std::io::Write;
        let Some(path) = std::env::var_os("HARDMUTE_TEST_FOREIGN_SERVER") else {
            return; // only runs as the child process
        };
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        println!("LISTENING");
        for mut client in listener.incoming().flatten() {
            let _ = client.write_all(
                b"{\"type\":\"event\",\"v\":1,\"event\":{\"kind\":\"state\",\"muted\":true}}\n",
            );
        }
    }

    /// Another user holds the socket name (here: an overridden path in a shared directory) and
    /// poses as the daemon: the client refuses it before reading a byte, by the server's uid
    /// from SO_PEERCRED. Needs root to start a process as another uid.
    #[test]
    fn a_server_of_another_user_is_refused_by_the_client() {
        use std::io::BufRead;
        use std::os::unix::process::CommandExt;
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIPPED a_server_of_another_user_is_refused_by_the_client: needs root to run a server as another uid");
            return;
        }
        let root = tempfile::tempdir().unwrap();
        fs::set_permissions(root.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let path = root.path().join("squatted.sock");
        // The other user runs a copy of this test binary: the build directory may sit where that
        // user cannot reach it (CI builds under root's 0700 home).
        let exe = root.path().join("foreign-server");
        fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
        fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
        let mut child = std::process::Command::new(&exe)
            .args([
                "--exact",
                "transport::tests::foreign_server_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("HARDMUTE_TEST_FOREIGN_SERVER", &path)
            .uid(65534)
            .gid(65534)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while !line.contains("LISTENING") {
            line.clear();
            assert_ne!(out.read_line(&mut line).unwrap(), 0, "child ended early");
        }
        let result = super::Connection::connect(&path);
        let _ = child.kill();
        let _ = child.wait();
        let err = result.expect_err("a server of uid 65534 must be refused");
        assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
        assert!(err.to_string().contains("uid 65534"), "{err}");
        // The same path served by our own user is accepted (the check is not a blanket refusal).
        let ours = root.path().join("ours.sock");
        let listener = super::SocketListener::bind(&ours).unwrap();
        let accept = std::thread::spawn(move || listener.accept().map(|_| ()));
        assert!(super::Connection::connect(&ours).is_ok());
        accept.join().unwrap().unwrap();
    }
}
