//! The `hardmute` binary against a daemon started in the test: outputs and exit codes.

use hardmuted::{RunningServer, StateStore};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

struct Daemon {
    _server: RunningServer,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

fn start_daemon() -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("hardmute.sock");
    let server = hardmuted::run(
        "simulated",
        StateStore::in_dir(&dir.path().join("config")),
        &socket,
    )
    .unwrap();
    Daemon {
        _server: server,
        socket,
        _dir: dir,
    }
}

fn hardmute(socket: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hardmute"))
        .arg("--socket")
        .arg(socket)
        .args(args)
        .env_remove("HARDMUTE_SOCKET")
        .output()
        .unwrap()
}

fn json_line(output: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "one JSON document per line, one result: {stdout}"
    );
    serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[test]
fn commands_succeed_with_exit_code_0_and_json_is_one_document_per_line() {
    let daemon = start_daemon();
    let status = hardmute(&daemon.socket, &["status"]);
    assert_eq!(status.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&status.stdout).contains("MUTED"));

    let before = json_line(&hardmute(&daemon.socket, &["--json", "status"]));
    assert_eq!(before["muted"], true);
    let toggled = hardmute(&daemon.socket, &["toggle", "--json"]);
    assert_eq!(toggled.status.code(), Some(0));
    let toggled = json_line(&toggled);
    assert_eq!(toggled["muted"], false);
    assert_eq!(toggled["source"], "cli");
    assert_eq!(
        toggled["generation"].as_u64().unwrap(),
        before["generation"].as_u64().unwrap() + 1
    );
    assert_eq!(
        json_line(&hardmute(&daemon.socket, &["--json", "mute"]))["muted"],
        true
    );
    assert_eq!(
        json_line(&hardmute(&daemon.socket, &["--json", "unmute"]))["muted"],
        false
    );

    let devices = json_line(&hardmute(&daemon.socket, &["--json", "devices"]));
    let names: Vec<&str> = devices
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert!(names.len() >= 2, "{devices}");
    let used = json_line(&hardmute(&daemon.socket, &["--json", "use", names[1]]));
    assert_eq!(used["device"], names[1]);
    assert_eq!(
        json_line(&hardmute(&daemon.socket, &["--json", "use", "default"]))["device"],
        serde_json::Value::Null
    );

    let listeners = json_line(&hardmute(&daemon.socket, &["--json", "listeners"]));
    assert!(
        listeners
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["target"]["kind"] == "virtual"),
        "{listeners}"
    );

    let set = json_line(&hardmute(
        &daemon.socket,
        &["--json", "set", "release-on-mute", "on"],
    ));
    assert_eq!(set["release_on_mute"], true);
    let set = json_line(&hardmute(
        &daemon.socket,
        &["--json", "set", "hotkey", "Ctrl+Alt+K"],
    ));
    assert_eq!(set["hotkey"], "Ctrl+Alt+K");
    let set = json_line(&hardmute(
        &daemon.socket,
        &["--json", "set", "hotkey-mode", "push-to-talk"],
    ));
    assert_eq!(set["hotkey_mode"], "push_to_talk");
    let set = json_line(&hardmute(
        &daemon.socket,
        &["--json", "set", "hotkey", "none"],
    ));
    assert_eq!(set["hotkey"], serde_json::Value::Null);
    let output = hardmute(&daemon.socket, &["--json", "set", "hotkey", "Ctrl+"]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "the daemon refuses a malformed hotkey"
    );
    assert_eq!(json_line(&output)["error"]["kind"], "bad_request");
    for args in [
        &["devices"][..],
        &["listeners"],
        &["mute"],
        &["use", "default"],
    ] {
        assert_eq!(
            hardmute(&daemon.socket, args).status.code(),
            Some(0),
            "{args:?}"
        );
    }
}

#[test]
fn daemon_errors_exit_1_with_the_typed_error() {
    let daemon = start_daemon();
    let output = hardmute(&daemon.socket, &["use", "no-such-mic"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no-such-mic") && stderr.contains("sim-sine"),
        "{stderr}"
    );

    let output = hardmute(&daemon.socket, &["--json", "use", "no-such-mic"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(json_line(&output)["error"]["kind"], "unknown_device");
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("none.sock");
    for args in [
        &["frobnicate"][..],
        &[],
        &["use"],
        &["set", "release-on-mute", "maybe"],
        &["set", "hotkey-mode", "sometimes"],
        &["set", "hotkey"],
        &["status", "--bogus"],
    ] {
        let output = hardmute(&socket, args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let help = hardmute(&socket, &["--help"]);
    assert_eq!(help.status.code(), Some(0));
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("Exit codes:") && help.contains("3  hardmuted is not running"),
        "{help}"
    );
}

#[test]
fn no_daemon_exits_3_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("none.sock");
    for command in ["status", "toggle", "watch", "devices", "listeners"] {
        let output = hardmute(&socket, &[command]);
        assert_eq!(output.status.code(), Some(3), "{command}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("hardmuted is not running; start it with"),
            "{stderr}"
        );
    }
    let output = hardmute(&socket, &["--json", "status"]);
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(json_line(&output)["error"]["kind"], "not_running");
}

#[test]
fn watch_prints_the_state_then_each_change() {
    let daemon = start_daemon();
    let mut watch = Command::new(env!("CARGO_BIN_EXE_hardmute"))
        .arg("--socket")
        .arg(&daemon.socket)
        .args(["watch", "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let mut next =
        || -> serde_json::Value { serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap() };
    assert_eq!(next()["muted"], true);
    assert_eq!(hardmute(&daemon.socket, &["unmute"]).status.code(), Some(0));
    let first = next();
    assert_eq!(first["muted"], false);
    assert_eq!(hardmute(&daemon.socket, &["mute"]).status.code(), Some(0));
    let second = next();
    assert_eq!(second["muted"], true);
    assert_eq!(
        second["generation"].as_u64().unwrap(),
        first["generation"].as_u64().unwrap() + 1
    );
    watch.kill().unwrap();
    watch.wait().unwrap();
}

#[cfg(unix)]
#[test]
fn another_user_is_refused_with_exit_1() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    if !nix::unistd::geteuid().is_root() {
        eprintln!(
            "SKIPPED another_user_is_refused_with_exit_1: needs root to run the CLI as uid 65534"
        );
        return;
    }
    let daemon = start_daemon();
    // Open everything but the peer check.
    let dir = daemon.socket.parent().unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::set_permissions(&daemon.socket, std::fs::Permissions::from_mode(0o777)).unwrap();
    let exe = dir.join("hardmute-copy");
    std::fs::copy(env!("CARGO_BIN_EXE_hardmute"), &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut command = Command::new(&exe);
    command
        .arg("--socket")
        .arg(&daemon.socket)
        .args(["--json", "unmute"])
        .uid(65534)
        .gid(65534);
    let output = run_fresh_copy(&mut command);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The CLI refuses first: the socket is served by uid 0, not by its user (the daemon would
    // refuse it too, with kind "refused").
    let error = &json_line(&output)["error"];
    assert_eq!(error["kind"], "io");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("served by uid 0") && message.contains("not by a hardmuted of your user"),
        "{message}"
    );
    assert_eq!(
        json_line(&hardmute(&daemon.socket, &["--json", "status"]))["muted"],
        true
    );
}

/// Runs a just-copied executable. Another test thread forking while the copy's write handle
/// was open can hold it for a moment (ETXTBSY); that clears as soon as that child execs.
#[cfg(unix)]
fn run_fresh_copy(command: &mut Command) -> Output {
    for _ in 0..50 {
        match command.output() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            other => return other.unwrap(),
        }
    }
    panic!("the copied executable stayed busy");
}
