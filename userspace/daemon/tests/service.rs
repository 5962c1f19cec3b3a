//! `hardmuted` under a service manager: `READY=1` on a fake `NOTIFY_SOCKET` only once it serves,
//! `STOPPING=1` on SIGTERM, and `<N>` priority prefixes on stderr only when stderr is the
//! stream `JOURNAL_STREAM` names.
#![cfg(unix)]

use hardmute_ipc::Client;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::os::unix::fs::MetadataExt as _;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn daemon(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hardmuted"));
    cmd.args(["--backend", "simulated"])
        .env("HARDMUTE_SOCKET", dir.join("hardmute.sock"))
        .env("HARDMUTE_CONFIG_DIR", dir.join("config"))
        .env("RUST_LOG", "info")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("JOURNAL_STREAM");
    cmd
}

fn stop(mut child: Child) {
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "hardmuted did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn ready_is_sent_once_the_socket_serves_and_stopping_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let notify = dir.path().join("notify");
    let listener = UnixDatagram::bind(&notify).unwrap();
    listener
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let child = daemon(dir.path())
        .env("NOTIFY_SOCKET", &notify)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 512];
    let n = listener.recv(&mut buf).expect("no READY=1 from hardmuted");
    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(msg.starts_with("READY=1\n"), "{msg:?}");
    assert!(msg.contains("STATUS=serving simulated"), "{msg:?}");
    // READY means ready: the control socket answers right away, without retrying.
    let state = Client::connect(&dir.path().join("hardmute.sock"))
        .expect("socket not serving at READY=1")
        .status()
        .unwrap();
    assert_eq!(state.backend, "simulated");
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let n = listener.recv(&mut buf).expect("no STOPPING=1 on SIGTERM");
    assert_eq!(&buf[..n], b"STOPPING=1");
    stop(child);
}

#[test]
fn log_lines_carry_syslog_priorities_only_on_the_journal_stream() {
    let dir = tempfile::tempdir().unwrap();
    for journal in [true, false] {
        let log_path = dir.path().join(format!("stderr-{journal}"));
        let file = std::fs::File::create(&log_path).unwrap();
        let meta = file.metadata().unwrap();
        let mut cmd = daemon(dir.path());
        if journal {
            cmd.env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()));
        } else {
            // A stale value (stderr redirected elsewhere): plain lines.
            cmd.env(
                "JOURNAL_STREAM",
                format!("{}:{}", meta.dev(), meta.ino() + 1),
            );
        }
        let child = cmd.stderr(file).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Client::connect(&dir.path().join("hardmute.sock")).is_err() {
            assert!(Instant::now() < deadline, "hardmuted did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
        stop(child);
        let log = std::fs::read_to_string(&log_path).unwrap();
        let lines: Vec<&str> = log.lines().collect();
        assert!(lines.len() >= 2, "{log}");
        if journal {
            for line in &lines {
                assert!(
                    line.starts_with("<6>") || line.starts_with("<4>") || line.starts_with("<3>"),
                    "no priority prefix: {line:?}"
                );
            }
            assert!(
                lines
                    .iter()
                    .any(|l| l.starts_with("<6>") && l.contains("stopped")),
                "{log}"
            );
        } else {
            assert!(lines.iter().all(|l| !l.starts_with('<')), "{log}");
            assert!(log.contains("stopped"), "{log}");
        }
    }
}
