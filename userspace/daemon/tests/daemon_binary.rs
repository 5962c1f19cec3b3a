//! The `hardmuted` binary: starts, serves, and shuts down cleanly on SIGTERM / Ctrl-C.
#![cfg(unix)]

use hardmute_ipc::{ChangeSource, Client};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn spawn_daemon(socket: &Path, config: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_hardmuted"))
        .args(["--backend", "simulated"])
        .env("HARDMUTE_SOCKET", socket)
        .env("HARDMUTE_CONFIG_DIR", config)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn connect_when_up(socket: &Path, daemon: &mut Child) -> Client {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(client) = Client::connect(socket) {
            return client;
        }
        assert!(
            daemon.try_wait().unwrap().is_none(),
            "hardmuted exited early"
        );
        assert!(Instant::now() < deadline, "hardmuted did not come up");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stop_with(signal: Signal, mut daemon: Child) -> String {
    kill(Pid::from_raw(daemon.id() as i32), signal).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = daemon.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "hardmuted did not stop on {signal}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut log = String::new();
    std::io::Read::read_to_string(daemon.stderr.as_mut().unwrap(), &mut log).unwrap();
    assert!(
        status.success(),
        "hardmuted exited with {status} on {signal}: {log}"
    );
    log
}

#[test]
fn sigterm_and_sigint_shut_down_cleanly_and_remove_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("hardmute.sock");
    let config = dir.path().join("config");
    for signal in [Signal::SIGTERM, Signal::SIGINT] {
        let mut daemon = spawn_daemon(&socket, &config);
        let mut client = connect_when_up(&socket, &mut daemon);
        let state = client.toggle(ChangeSource::Cli).unwrap();
        drop(client);
        let log = stop_with(signal, daemon);
        assert!(!socket.exists(), "socket left behind after {signal}: {log}");
        assert!(log.contains("stopped"), "{log}");
        // The toggled state was saved and comes back.
        let mut daemon = spawn_daemon(&socket, &config);
        let restored = connect_when_up(&socket, &mut daemon).status().unwrap();
        assert_eq!(restored.muted, state.muted, "state after {signal} restart");
        stop_with(Signal::SIGTERM, daemon);
    }
}

#[test]
fn unknown_backend_is_a_usage_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_hardmuted"))
        .args(["--backend", "nonsense"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("simulated"));
}
