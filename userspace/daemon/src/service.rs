//! What the service manager sees of `hardmuted`: log lines with priorities, and readiness.
//!
//! * **Logs.** Under systemd the daemon's stderr is a journal stream (systemd sets
//!   `JOURNAL_STREAM=<device>:<inode>` of that stream). Each line then starts with a syslog
//!   priority prefix, `<3>` error, `<4>` warning, `<6>` info, `<7>` debug/trace, which journald
//!   strips and stores as the entry's priority, so `journalctl --user -u hardmuted -p warning`
//!   shows the warnings and errors. Anywhere else (a terminal, launchd's log file) the lines are
//!   env_logger's usual ones.
//! * **Readiness.** `Type=notify` units wait for `READY=1` on the datagram socket named by
//!   `NOTIFY_SOCKET`; [`notify`] sends it once the backend is up and the control socket
//!   listens, and `STOPPING=1` when shutting down. A path or an abstract (`@name`) socket,
//!   as sd_notify(3) describes; nothing is sent when the variable is unset.

use std::io::Write as _;

/// The syslog priority journald reads from a `<N>` line prefix.
pub fn syslog_priority(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

/// True when `journal_stream` (the value of `JOURNAL_STREAM`) names the stream `stderr` is,
/// given as its (device, inode). systemd documents this comparison as the way to tell that a
/// process logs to the journal rather than to a stream it was redirected to later.
pub fn is_journal_stream(journal_stream: Option<&str>, stderr: Option<(u64, u64)>) -> bool {
    let (Some(value), Some((dev, ino))) = (journal_stream, stderr) else {
        return false;
    };
    let Some((d, i)) = value.split_once(':') else {
        return false;
    };
    d.parse::<u64>() == Ok(dev) && i.parse::<u64>() == Ok(ino)
}

/// (device, inode) of this process's stderr.
#[cfg(unix)]
fn stderr_identity() -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    // fstat(2) of fd 2 without unsafe code: /dev/stderr resolves to the open file itself
    // (pipe, socket or file) on Linux and macOS.
    std::fs::metadata("/dev/stderr")
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn stderr_identity() -> Option<(u64, u64)> {
    None
}

/// Sets up logging (`RUST_LOG`, default `info`): with priority prefixes when stderr is the
/// journal, env_logger's usual format otherwise.
pub fn init_logging() {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    let journal = is_journal_stream(
        std::env::var("JOURNAL_STREAM").ok().as_deref(),
        stderr_identity(),
    );
    if journal {
        // journald adds its own timestamp and the unit's name.
        builder.format(|buf, record| {
            writeln!(
                buf,
                "<{}>{}: {}",
                syslog_priority(record.level()),
                record.target(),
                record.args()
            )
        });
    }
    builder.init();
}

/// Sends `state` (e.g. `READY=1`) to the service manager when `NOTIFY_SOCKET` is set. Returns
/// whether a message was sent; errors are logged, never fatal (the daemon works without it).
pub fn notify(state: &str) -> bool {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
        return false;
    };
    match send_notify(&socket, state) {
        Ok(()) => true,
        Err(e) => {
            log::warn!("could not tell the service manager {state:?}: {e}");
            false
        }
    }
}

#[cfg(unix)]
fn send_notify(socket: &std::ffi::OsStr, state: &str) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt as _;
    use std::os::unix::net::UnixDatagram;
    let bytes = socket.as_bytes();
    let sock = UnixDatagram::unbound()?;
    let sent = match bytes.first() {
        Some(b'/') => sock.send_to(state.as_bytes(), std::path::Path::new(socket))?,
        #[cfg(any(target_os = "linux", target_os = "android"))]
        Some(b'@') => {
            #[cfg(target_os = "android")]
            use std::os::android::net::SocketAddrExt as _;
            #[cfg(target_os = "linux")]
            use std::os::linux::net::SocketAddrExt as _;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(&bytes[1..])?;
            sock.send_to_addr(state.as_bytes(), &addr)?
        }
        _ => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "NOTIFY_SOCKET is neither an absolute path nor an abstract socket",
            ))
        }
    };
    if sent == state.len() {
        Ok(())
    } else {
        Err(std::io::Error::other("short write to NOTIFY_SOCKET"))
    }
}

#[cfg(not(unix))]
fn send_notify(_socket: &std::ffi::OsStr, _state: &str) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "NOTIFY_SOCKET is a systemd feature",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_are_syslogs() {
        assert_eq!(syslog_priority(log::Level::Error), 3);
        assert_eq!(syslog_priority(log::Level::Warn), 4);
        assert_eq!(syslog_priority(log::Level::Info), 6);
        assert_eq!(syslog_priority(log::Level::Debug), 7);
        assert_eq!(syslog_priority(log::Level::Trace), 7);
    }

    #[test]
    fn journal_stream_must_name_stderr() {
        assert!(is_journal_stream(Some("8:12345"), Some((8, 12345))));
        assert!(!is_journal_stream(Some("8:12345"), Some((8, 12346))));
        assert!(!is_journal_stream(Some("8:12345"), None));
        assert!(!is_journal_stream(None, Some((8, 12345))));
        assert!(!is_journal_stream(Some("garbage"), Some((8, 12345))));
        assert!(!is_journal_stream(Some(""), Some((0, 0))));
    }

    #[cfg(unix)]
    #[test]
    fn notify_reaches_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        send_notify(path.as_os_str(), "READY=1\nSTATUS=up").unwrap();
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=up");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn notify_reaches_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt as _;
        let name = format!("hardmuted-notify-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = std::os::unix::net::UnixDatagram::bind_addr(&addr).unwrap();
        send_notify(std::ffi::OsStr::new(&format!("@{name}")), "READY=1").unwrap();
        let mut buf = [0u8; 16];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
    }

    #[cfg(unix)]
    #[test]
    fn bad_notify_socket_is_an_error_not_a_panic() {
        assert!(send_notify(std::ffi::OsStr::new("relative/path"), "READY=1").is_err());
        assert!(send_notify(std::ffi::OsStr::new("/nonexistent/notify"), "READY=1").is_err());
    }
}
