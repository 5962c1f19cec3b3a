//! What scripts and packagers rely on: `is-muted`'s exit status, `leak-test` running the separate
//! program (or saying how to get it), completions and man pages.

use hardmuted::StateStore;
use std::path::Path;
use std::process::{Command, Output};

fn hardmute(socket: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hardmute"))
        .arg("--socket")
        .arg(socket)
        .args(args)
        .env_remove("HARDMUTE_SOCKET")
        .output()
        .unwrap()
}

#[test]
fn is_muted_answers_through_the_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("hardmute.sock");
    // No daemon: 3, and the message names how to start it.
    let out = hardmute(&socket, &["is-muted"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stdout.is_empty());
    if cfg!(target_os = "linux") {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("systemctl --user start hardmuted"),
            "{stderr}"
        );
    }

    let _server = hardmuted::run(
        "simulated",
        StateStore::in_dir(&dir.path().join("config")),
        &socket,
    )
    .unwrap();
    assert_eq!(hardmute(&socket, &["mute"]).status.code(), Some(0));
    let muted = hardmute(&socket, &["is-muted"]);
    assert_eq!(muted.status.code(), Some(0));
    assert!(muted.stdout.is_empty(), "is-muted prints nothing");
    assert_eq!(hardmute(&socket, &["unmute"]).status.code(), Some(0));
    assert_eq!(hardmute(&socket, &["is-muted"]).status.code(), Some(1));
    let json = hardmute(&socket, &["--json", "is-muted"]);
    assert_eq!(json.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&json.stdout), "{\"muted\":false}\n");
}

/// Runs `cmd`, retrying while the kernel says ETXTBSY: a file this test just wrote (the copied
/// CLI, the stand-in script) stays "busy" while another test thread's fork still holds the
/// writing descriptor until that child execs (a Linux race, not the CLI's behaviour).
#[cfg(unix)]
fn output_of_fresh_executable(cmd: &mut Command) -> Output {
    for _ in 0..50 {
        match cmd.output() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            // The CLI's own exec of the stand-in can meet the same window.
            Ok(out) if String::from_utf8_lossy(&out.stderr).contains("Text file busy") => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            other => return other.unwrap(),
        }
    }
    panic!("{cmd:?} stayed busy (ETXTBSY) for a second");
}

#[cfg(unix)]
#[test]
fn leak_test_runs_the_sibling_program_with_every_argument_and_its_status() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    // A copy of hardmute next to a stand-in hardmute-leak-test that records its arguments.
    let cli = dir.path().join("hardmute");
    std::fs::copy(env!("CARGO_BIN_EXE_hardmute"), &cli).unwrap();
    let record = dir.path().join("args");
    let stand_in = dir.path().join("hardmute-leak-test");
    std::fs::write(
        &stand_in,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}'\nexit 2\n",
            record.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&stand_in, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = output_of_fresh_executable(
        Command::new(&cli)
            .args(["leak-test", "--short", "--out", "a b", "--help"])
            .env("PATH", "/nonexistent"),
    );
    assert_eq!(out.status.code(), Some(2), "the leak test's own status");
    assert_eq!(
        std::fs::read_to_string(&record).unwrap(),
        "--short\n--out\na b\n--help\n"
    );

    // Without it: the leak test's error status and how to get the program.
    std::fs::remove_file(&stand_in).unwrap();
    let out = output_of_fresh_executable(
        Command::new(&cli)
            .args(["leak-test", "--short"])
            .env("PATH", "/nonexistent"),
    );
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("hardmute-leak-test")
            && stderr.contains("cargo build --release -p hardmute-leaktest"),
        "{stderr}"
    );
}

#[test]
fn completions_are_generated_for_each_shell() {
    for (shell, marker) in [
        ("bash", "complete -F _hardmute"),
        ("zsh", "#compdef hardmute"),
        ("fish", "complete -c hardmute"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_hardmute"))
            .args(["completions", shell])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(marker), "{shell}: {text}");
        assert!(text.contains("is-muted"), "{shell} misses is-muted");
        assert!(
            !text.contains("man-pages"),
            "{shell} offers the hidden man-pages"
        );
    }
    let bad = Command::new(env!("CARGO_BIN_EXE_hardmute"))
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn man_pages_are_written_into_the_given_folder() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hardmute"))
        .arg("man-pages")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.lines().count() >= 10, "{listed}");
    for line in listed.lines() {
        assert!(Path::new(line).is_file(), "{line} listed but missing");
    }
    // The hidden command is not in --help.
    let help = Command::new(env!("CARGO_BIN_EXE_hardmute"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&help.stdout).contains("man-pages"));
}
