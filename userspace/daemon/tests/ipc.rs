//! IPC against the real daemon library with the simulated backend, over a real socket.

use hardmute_ipc::{
    ChangeSource, Client, ClientError, Command, DaemonOption, ErrorKind, ListenTarget, Reply,
    ServerMessage, MAX_LINE_BYTES,
};
use hardmuted::{RunningServer, StateStore};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A socket path unique to this test: a file in its temp dir on Unix, a pipe named after that
/// dir on Windows (where local sockets are named pipes).
fn socket_in(dir: &Path) -> PathBuf {
    if cfg!(windows) {
        let unique = dir.file_name().unwrap().to_string_lossy();
        PathBuf::from(format!(r"\\.\pipe\hardmute-test-{unique}"))
    } else {
        dir.join("hardmute.sock")
    }
}

struct TestDaemon {
    server: Option<RunningServer>,
    socket: PathBuf,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestDaemon {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config");
        Self::start_in(dir, config)
    }

    fn start_in(dir: tempfile::TempDir, config: PathBuf) -> Self {
        let socket = socket_in(dir.path());
        let server = hardmuted::run("simulated", StateStore::in_dir(&config), &socket).unwrap();
        Self {
            server: Some(server),
            socket,
            config,
            _dir: dir,
        }
    }

    fn client(&self) -> Client {
        Client::connect(&self.socket).unwrap()
    }

    /// Stops the daemon and starts a new one on the same config dir.
    fn restart(mut self) -> Self {
        self.server.take().unwrap().shutdown();
        #[cfg(unix)]
        assert!(!self.socket.exists(), "socket must be removed on shutdown");
        let server =
            hardmuted::run("simulated", StateStore::in_dir(&self.config), &self.socket).unwrap();
        self.server = Some(server);
        self
    }
}

fn daemon_error(result: Result<impl std::fmt::Debug, ClientError>) -> (ErrorKind, String) {
    match result {
        Err(ClientError::Daemon(e)) => (e.kind, e.message),
        other => panic!("expected a typed error from the daemon, got {other:?}"),
    }
}

fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn round_trips_for_every_request() {
    let daemon = TestDaemon::start();
    let mut client = daemon.client();

    let fresh = client.status().unwrap();
    assert!(fresh.muted, "a fresh install starts muted");
    assert_eq!(fresh.backend, "simulated");
    assert_eq!(fresh.device, None);

    let unmuted = client.unmute(ChangeSource::Cli).unwrap();
    assert!(!unmuted.muted);
    assert_eq!(unmuted.source, ChangeSource::Cli);
    assert_eq!(unmuted.generation, fresh.generation + 1);

    let muted = client.toggle(ChangeSource::Panel).unwrap();
    assert!(muted.muted);
    assert_eq!(muted.source, ChangeSource::Panel);
    assert_eq!(muted.generation, unmuted.generation + 1);
    // Muting what is muted changes nothing.
    assert_eq!(
        client.mute(ChangeSource::Cli).unwrap().generation,
        muted.generation
    );

    let devices = client.devices().unwrap();
    assert!(devices.len() >= 2);
    assert_eq!(devices.iter().filter(|d| d.is_default).count(), 1);
    let other = devices.iter().find(|d| !d.is_default).unwrap().name.clone();
    assert_eq!(
        client
            .select_device(Some(&other))
            .unwrap()
            .device
            .as_deref(),
        Some(other.as_str())
    );

    let (kind, message) = daemon_error(client.select_device(Some("no-such-mic")));
    assert_eq!(kind, ErrorKind::UnknownDevice);
    for device in &devices {
        assert!(
            message.contains(&device.name),
            "the error lists {}: {message}",
            device.name
        );
    }
    let after = client.status().unwrap();
    assert!(after.muted, "a failed device switch leaves the mic muted");
    assert_eq!(
        after.device.as_deref(),
        Some(other.as_str()),
        "and on the input it had"
    );
    assert_eq!(client.select_device(None).unwrap().device, None);

    let listeners = client.listeners().unwrap();
    assert!(listeners.iter().any(|l| l.target == ListenTarget::Virtual));
    assert!(listeners
        .iter()
        .any(|l| matches!(l.target, ListenTarget::Physical { .. })));

    // Release on mute: the physical mic closes while muted and reopens on unmute.
    assert!(
        client
            .set_option(DaemonOption::ReleaseOnMute(true))
            .unwrap()
            .release_on_mute
    );
    wait_until("the physical mic to be released", || {
        !client.status().unwrap().physical_open
    });
    assert!(!client
        .listeners()
        .unwrap()
        .iter()
        .any(|l| matches!(l.target, ListenTarget::Physical { .. })));
    client.unmute(ChangeSource::Cli).unwrap();
    wait_until("the physical mic to reopen", || {
        client.status().unwrap().physical_open
    });

    assert!(
        client
            .set_option(DaemonOption::StartMuted(true))
            .unwrap()
            .start_muted
    );
}

#[test]
fn the_real_gate_delivers_zeros_while_muted_and_audio_when_unmuted() {
    let daemon = TestDaemon::start();
    let mut client = daemon.client();
    let start = client.status().unwrap().counters;
    wait_until("muted cycles", || {
        client.status().unwrap().counters.frames_zeroed > start.frames_zeroed + 4800
    });

    // Hammer the gate: every acknowledged mute must hold from the next cycle on.
    for i in 0..40 {
        let state = if i % 2 == 0 {
            client.unmute(ChangeSource::Cli)
        } else {
            client.mute(ChangeSource::Cli)
        };
        assert_eq!(state.unwrap().muted, i % 2 == 1);
        std::thread::sleep(Duration::from_millis(3 + (i % 7)));
    }
    let unmuted = client.unmute(ChangeSource::Cli).unwrap().counters;
    wait_until("unmuted audio", || {
        let c = client.status().unwrap().counters;
        (c.frames_delivered - c.frames_zeroed)
            > (unmuted.frames_delivered - unmuted.frames_zeroed) + 4800
    });
    client.mute(ChangeSource::Cli).unwrap();
    let muted = client.status().unwrap().counters;
    wait_until("muted cycles", || {
        client.status().unwrap().counters.frames_zeroed > muted.frames_zeroed + 4800
    });
    assert_eq!(
        client
            .status()
            .unwrap()
            .counters
            .nonzero_samples_while_muted,
        Some(0)
    );
}

#[test]
fn subscribers_see_every_change_in_order_and_can_still_send_requests() {
    let daemon = TestDaemon::start();
    let (initial, mut events) = daemon.client().subscribe().unwrap();
    assert!(initial.muted);
    let mut controller = daemon.client();
    controller.unmute(ChangeSource::Hotkey).unwrap();
    controller.mute(ChangeSource::Tray).unwrap();
    let first = events.next().unwrap().unwrap();
    assert!(!first.muted);
    assert_eq!(first.source, ChangeSource::Hotkey);
    let second = events.next().unwrap().unwrap();
    assert!(second.muted);
    assert_eq!(second.source, ChangeSource::Tray);
    assert_eq!(second.generation, first.generation + 1);

    // A request on the subscribed connection is answered; the event it causes still arrives.
    match events
        .request(Command::Toggle {
            source: ChangeSource::Cli,
        })
        .unwrap()
    {
        Reply::State(state) => assert!(!state.muted),
        other => panic!("{other:?}"),
    }
    let third = events.next().unwrap().unwrap();
    assert!(!third.muted);
    assert_eq!(third.generation, second.generation + 1);
}

/// Sends `line` raw and returns the daemon's answer.
fn answer(client: &mut Client, line: &[u8]) -> ServerMessage {
    client.send_raw(line).unwrap();
    client.read_message().unwrap()
}

fn assert_error(message: ServerMessage, kind: ErrorKind, id: Option<u64>) {
    match message {
        ServerMessage::Error { error, id: got, .. } => {
            assert_eq!(error.kind, kind, "{}", error.message);
            assert_eq!(got, id, "{}", error.message);
            assert!(!error.message.is_empty());
        }
        other => panic!("expected {kind} error, got {other:?}"),
    }
}

fn assert_serving(client: &mut Client) {
    assert!(
        client.status().is_ok(),
        "the daemon must keep serving this connection"
    );
}

#[test]
fn malformed_requests_get_typed_errors_and_the_connection_keeps_working() {
    let daemon = TestDaemon::start();
    let mut client = daemon.client();
    let cases: &[(&[u8], ErrorKind, Option<u64>)] = &[
        (b"this is not json\n", ErrorKind::BadJson, None),
        (
            b"{\"v\":1,\"id\":3,\"op\":\"sta\n",
            ErrorKind::BadJson,
            None,
        ), // truncated JSON
        (b"\xff\xfe{}\n", ErrorKind::BadJson, None), // not UTF-8
        (b"\n", ErrorKind::BadJson, None),           // empty line
        (b"42\n", ErrorKind::BadRequest, None),
        (
            b"{\"v\":1,\"op\":\"status\"}\n",
            ErrorKind::BadRequest,
            None,
        ),
        (
            b"{\"id\":5,\"op\":\"status\"}\n",
            ErrorKind::BadRequest,
            Some(5),
        ),
        (
            b"{\"v\":99,\"id\":6,\"op\":\"status\"}\n",
            ErrorKind::UnsupportedVersion,
            Some(6),
        ),
        (
            b"{\"v\":0,\"id\":7,\"op\":\"mute\"}\n",
            ErrorKind::UnsupportedVersion,
            Some(7),
        ),
        (
            b"{\"v\":1,\"id\":8,\"op\":\"self_destruct\"}\n",
            ErrorKind::UnknownRequest,
            Some(8),
        ),
        (
            b"{\"v\":1,\"id\":9,\"op\":\"mute\",\"source\":42}\n",
            ErrorKind::BadRequest,
            Some(9),
        ),
        (
            b"{\"v\":1,\"id\":10,\"op\":\"select_device\"}\n",
            ErrorKind::BadRequest,
            Some(10),
        ),
    ];
    for (line, kind, id) in cases {
        let reply = answer(&mut client, line);
        assert_error(reply, *kind, *id);
        assert_serving(&mut client);
    }
    // None of it changed the state.
    assert!(client.status().unwrap().muted);
    // A fresh connection is served too.
    assert_serving(&mut daemon.client());
}

#[test]
fn oversized_line_is_refused_before_it_ends_and_the_next_line_is_served() {
    let daemon = TestDaemon::start();
    let mut client = daemon.client();
    // Four times the cap, no newline yet: the refusal must come now, while the line is still
    // open — proof the daemon is not buffering it to the end.
    let chunk = vec![b'x'; MAX_LINE_BYTES];
    client
        .send_raw(b"{\"v\":1,\"id\":1,\"op\":\"status\",\"pad\":\"")
        .unwrap();
    for _ in 0..4 {
        client.send_raw(&chunk).unwrap();
    }
    assert_error(client.read_message().unwrap(), ErrorKind::TooLarge, None);
    // The rest of that line is dropped; the next line is a normal request.
    client.send_raw(&chunk).unwrap();
    client.send_raw(b"\"}\n").unwrap();
    assert_serving(&mut client);
    assert_serving(&mut daemon.client());
}

#[cfg(unix)]
#[test]
fn a_connection_cut_mid_request_gets_truncated_and_others_are_unaffected() {
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::UnixStream;
    let daemon = TestDaemon::start();
    let mut watcher = daemon.client();
    let mut stream = UnixStream::connect(&daemon.socket).unwrap();
    stream.write_all(b"{\"v\":1,\"id\":1,\"op\":\"unm").unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line).unwrap();
    assert_error(
        ServerMessage::parse(line.as_bytes()).unwrap(),
        ErrorKind::Truncated,
        None,
    );
    assert!(
        watcher.status().unwrap().muted,
        "a cut-off unmute must not unmute"
    );
    assert_serving(&mut daemon.client());
}

#[test]
fn a_second_daemon_on_the_same_socket_is_refused() {
    let daemon = TestDaemon::start();
    let config = tempfile::tempdir().unwrap();
    let second = hardmuted::run(
        "simulated",
        StateStore::in_dir(config.path()),
        &daemon.socket,
    );
    let err = second.err().expect("the second daemon must not start");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
    assert_serving(&mut daemon.client());
}

#[cfg(unix)]
#[test]
fn a_stale_socket_file_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("hardmute.sock");
    // A socket file nobody serves, as a crashed daemon leaves behind.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let server = hardmuted::run(
        "simulated",
        StateStore::in_dir(&dir.path().join("c")),
        &socket,
    )
    .unwrap();
    assert!(Client::connect(&socket).unwrap().status().is_ok());
    server.shutdown();
    assert!(!socket.exists());
}

#[test]
fn no_daemon_is_reported_as_not_running() {
    let dir = tempfile::tempdir().unwrap();
    match Client::connect(&socket_in(dir.path())) {
        Err(ClientError::NotRunning { .. }) => {}
        other => panic!(
            "expected NotRunning, got {:?}",
            other.map(|c| c.path().to_owned())
        ),
    }
}

// ---- persistence -------------------------------------------------------------------------

#[test]
fn restart_keeps_the_state() {
    let daemon = TestDaemon::start();
    let mut client = daemon.client();
    client.unmute(ChangeSource::Cli).unwrap();
    client.select_device(Some("sim-noise")).unwrap();
    client
        .set_option(DaemonOption::ReleaseOnMute(true))
        .unwrap();
    drop(client);
    let daemon = daemon.restart();
    let state = daemon.client().status().unwrap();
    assert!(!state.muted, "unmuted before the restart, unmuted after");
    assert_eq!(state.device.as_deref(), Some("sim-noise"));
    assert!(state.release_on_mute);

    daemon.client().mute(ChangeSource::Cli).unwrap();
    let daemon = daemon.restart();
    assert!(
        daemon.client().status().unwrap().muted,
        "muted before the restart, muted after"
    );

    // start_muted wins over a saved unmute.
    let mut client = daemon.client();
    client.unmute(ChangeSource::Cli).unwrap();
    client.set_option(DaemonOption::StartMuted(true)).unwrap();
    drop(client);
    let daemon = daemon.restart();
    assert!(daemon.client().status().unwrap().muted);
}

/// The daemon-held guard (macOS hog / Windows exclusive mode), as the simulated backend models
/// it: off by default, on holds the physical mic open even under release-on-mute, the state
/// says whether it holds, and the setting survives a restart.
#[test]
fn the_guard_option_holds_the_mic_reports_it_and_persists() {
    let daemon = TestDaemon::start();
    let mut client = daemon.client();
    let fresh = client.status().unwrap();
    let guard = fresh
        .guard
        .expect("the simulated backend has a daemon-held guard");
    assert!(!guard.on && !guard.holds, "off by default: {guard:?}");

    client
        .set_option(DaemonOption::ReleaseOnMute(true))
        .unwrap();
    wait_until("release-on-mute to close the mic", || {
        !client.status().unwrap().physical_open
    });
    let on = client.set_option(DaemonOption::Guard(true)).unwrap();
    assert!(on.guard.as_ref().unwrap().on);
    wait_until("the guard to hold the mic while muted", || {
        let s = client.status().unwrap();
        s.physical_open && s.guard.unwrap().holds
    });
    drop(client);

    let daemon = daemon.restart();
    let mut client = daemon.client();
    wait_until("the guard to hold again after a restart", || {
        let s = client.status().unwrap();
        s.guard.as_ref().is_some_and(|g| g.on && g.holds) && s.physical_open
    });
    let off = client.set_option(DaemonOption::Guard(false)).unwrap();
    assert_eq!(off.guard, Some(hardmute_ipc::GuardState::default()));
    wait_until("release-on-mute to apply again", || {
        !client.status().unwrap().physical_open
    });
}

fn start_with_state_file(contents: &[u8]) -> (TestDaemon, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::create_dir(&config).unwrap();
    std::fs::write(config.join("state.toml"), contents).unwrap();
    let daemon = TestDaemon::start_in(dir, config.clone());
    (daemon, config)
}

#[test]
fn corrupt_state_starts_muted_and_keeps_the_bad_file() {
    let bad = b"muted = false\nthis is { not toml";
    let (daemon, config) = start_with_state_file(bad);
    assert!(
        daemon.client().status().unwrap().muted,
        "a corrupt state file must start MUTED"
    );
    assert_eq!(std::fs::read(config.join("state.toml.bad")).unwrap(), bad);
    // A fresh, valid state was written.
    let saved = std::fs::read_to_string(config.join("state.toml")).unwrap();
    assert!(saved.contains("muted = true"), "{saved}");
}

#[test]
fn valid_unmuted_state_file_starts_unmuted() {
    // The counterpart of the corrupt case: proves the daemon does read the file.
    let (daemon, _) = start_with_state_file(b"muted = false\n");
    assert!(!daemon.client().status().unwrap().muted);
}

#[test]
fn saved_device_that_is_gone_falls_back_to_the_default_input() {
    let (daemon, _) = start_with_state_file(b"muted = true\ndevice = \"unplugged-usb-mic\"\n");
    let state = daemon.client().status().unwrap();
    assert!(state.muted);
    assert_eq!(state.device, None);
}

// ---- another user ------------------------------------------------------------------------

#[cfg(unix)]
mod other_user {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;

    const CHILD_SOCKET_ENV: &str = "HARDMUTE_TEST_OTHER_USER_SOCKET";
    const NOBODY: u32 = 65534;

    /// Runs in a child process as uid 65534 (started by `a_client_of_another_uid_is_refused`).
    #[test]
    #[ignore = "helper: run as another uid by a_client_of_another_uid_is_refused"]
    fn other_user_client_helper() {
        let socket =
            std::env::var_os(CHILD_SOCKET_ENV).expect("run by a_client_of_another_uid_is_refused");
        assert_eq!(nix::unistd::geteuid().as_raw(), NOBODY);
        // The client library refuses a server of another user before talking to it...
        if let Ok(mut client) = Client::connect(Path::new(&socket)) {
            println!(
                "OUTCOME client-accepted muted={:?}",
                client.status().map(|s| s.muted)
            );
            return;
        }
        // ...so speak the protocol by hand, as a hostile client would, to reach the daemon's
        // own check.
        use std::io::{BufRead, Write};
        let mut stream = match std::os::unix::net::UnixStream::connect(&socket) {
            Ok(stream) => stream,
            Err(e) => {
                println!("OUTCOME connect-failed {e}");
                return;
            }
        };
        let _ = stream.write_all(b"{\"v\":1,\"id\":1,\"op\":\"unmute\",\"source\":\"cli\"}\n");
        let mut line = String::new();
        let _ = std::io::BufReader::new(stream).read_line(&mut line);
        match serde_json::from_str::<ServerMessage>(line.trim_end()) {
            Ok(ServerMessage::Error { error, .. }) => {
                println!("OUTCOME daemon-error {} {}", error.kind, error.message)
            }
            other => println!("OUTCOME other {other:?} ({line:?})"),
        }
    }

    #[test]
    fn a_client_of_another_uid_is_refused() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIPPED a_client_of_another_uid_is_refused: needs root to run a client as uid {NOBODY}");
            return;
        }
        // Everything but the peer check is opened up: the directory is 0777 and the socket
        // 0777, so only the daemon's credential check can refuse the other user.
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let config = dir.path().join("config");
        let daemon = TestDaemon::start_in(dir, config);
        std::fs::set_permissions(&daemon.socket, std::fs::Permissions::from_mode(0o777)).unwrap();
        // A copy of this test binary the other user can execute, whatever the build dir's mode.
        let exe = daemon.socket.with_file_name("ipc-test-client");
        std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();

        let mut command = std::process::Command::new(&exe);
        command
            .args([
                "--exact",
                "other_user::other_user_client_helper",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_SOCKET_ENV, &daemon.socket)
            .uid(NOBODY)
            .gid(NOBODY);
        // Another test thread forking while the copy's write handle was open can hold it for a
        // moment (ETXTBSY); that clears as soon as that child execs.
        let output = (0..50)
            .find_map(|_| match command.output() {
                Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                    std::thread::sleep(Duration::from_millis(20));
                    None
                }
                other => Some(other.unwrap()),
            })
            .expect("the copied test binary stayed busy");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "helper failed: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        // libtest prints the test name on the same line before the helper's output.
        let outcome = stdout
            .lines()
            .find_map(|l| l.find("OUTCOME ").map(|at| &l[at..]))
            .unwrap_or_else(|| panic!("no outcome from the helper: {stdout}"));
        assert!(
            outcome.starts_with("OUTCOME daemon-error refused "),
            "expected a typed refusal, got: {outcome}"
        );

        // The refused client changed nothing, and the daemon serves its own user.
        let mut client = daemon.client();
        assert!(client.status().unwrap().muted);
    }
}

// ---- resource limits ---------------------------------------------------------------------

#[test]
fn a_subscriber_that_stops_reading_never_blocks_the_daemon() {
    let daemon = TestDaemon::start();
    let (_, stuck) = daemon.client().subscribe().unwrap(); // never read from again
    let mut client = daemon.client();
    let started = Instant::now();
    // Far more events than the socket buffer and the outbox together hold.
    for _ in 0..1500 {
        client.toggle(ChangeSource::Cli).unwrap();
    }
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_serving(&mut daemon.client());
    drop(stuck);
}

#[test]
fn connections_beyond_the_limit_get_busy_and_a_freed_slot_is_reused() {
    let daemon = TestDaemon::start();
    let mut open: Vec<Client> = (0..hardmuted::server::MAX_CONNECTIONS)
        .map(|_| {
            let mut client = daemon.client();
            client.status().unwrap(); // its connection thread is running
            client
        })
        .collect();
    let (kind, _) = daemon_error(daemon.client().status());
    assert_eq!(kind, ErrorKind::Busy);
    open.pop();
    wait_until("a slot to free up", || {
        Client::connect(&daemon.socket).unwrap().status().is_ok()
    });
}

#[test]
fn subscribing_twice_on_one_connection_does_not_double_events() {
    let daemon = TestDaemon::start();
    let (_, mut events) = daemon.client().subscribe().unwrap();
    match events.request(Command::Subscribe).unwrap() {
        Reply::State(state) => assert!(state.muted),
        other => panic!("{other:?}"),
    }
    let mut controller = daemon.client();
    let first = controller.unmute(ChangeSource::Cli).unwrap();
    let second = controller.mute(ChangeSource::Cli).unwrap();
    assert_eq!(events.next().unwrap().unwrap().generation, first.generation);
    assert_eq!(
        events.next().unwrap().unwrap().generation,
        second.generation,
        "no duplicate of the first event"
    );
}

/// Collects every event of `events` on a thread, with its arrival time.
fn collect_events(
    mut events: hardmute_ipc::Subscription,
) -> std::sync::mpsc::Receiver<(Instant, hardmute_ipc::Event)> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        while let Some(Ok(event)) = events.next_event() {
            if tx.send((Instant::now(), event)).is_err() {
                return;
            }
        }
    });
    rx
}

fn levels_in(
    rx: &std::sync::mpsc::Receiver<(Instant, hardmute_ipc::Event)>,
    window: Duration,
) -> Vec<(Instant, hardmute_ipc::Event)> {
    let end = Instant::now() + window;
    let mut got = Vec::new();
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(event) => got.push(event),
            Err(_) => break,
        }
    }
    got
}

#[test]
fn level_events_flow_only_while_live_at_most_20_a_second() {
    use hardmute_ipc::{Event, LEVEL_MAX_HZ};
    let daemon = TestDaemon::start();
    let (initial, mut events) = daemon.client().subscribe().unwrap();
    assert!(initial.muted, "fresh start");
    assert_eq!(events.subscribe_level().unwrap(), LEVEL_MAX_HZ);
    // Asking twice on one connection does not double the stream.
    assert_eq!(events.subscribe_level().unwrap(), LEVEL_MAX_HZ);
    let rx = collect_events(events);

    // Muted (the simulated mic plays its sine all along): not one level event.
    let muted = levels_in(&rx, Duration::from_millis(700));
    assert!(
        !muted.iter().any(|(_, e)| matches!(e, Event::Level(_))),
        "level events while muted: {muted:?}"
    );

    let mut controller = daemon.client();
    controller.unmute(ChangeSource::Cli).unwrap();
    let live = levels_in(&rx, Duration::from_millis(1500));
    let levels: Vec<_> = live
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Level(level) => Some(*level),
            _ => None,
        })
        .collect();
    // The simulated sine: amplitude 0.5 (+0.01 offset): peak ~0.51, RMS ~0.35.
    assert!(
        levels.len() >= 10,
        "live for 1.5 s: level events expected ({})",
        levels.len()
    );
    assert!(
        levels.len() <= (LEVEL_MAX_HZ as usize * 3) / 2 + 2,
        "at most {LEVEL_MAX_HZ}/s: {} in 1.5 s",
        levels.len()
    );
    let last = levels.last().unwrap();
    assert!(
        (0.45..=0.55).contains(&last.peak) && (0.3..=0.4).contains(&last.rms),
        "{last:?}"
    );

    // After the mute has returned, nothing more: the state event is the last word.
    controller.mute(ChangeSource::Cli).unwrap();
    let after = levels_in(&rx, Duration::from_millis(700));
    let muted_at = after
        .iter()
        .position(|(_, e)| matches!(e, Event::State(s) if s.muted))
        .expect("the mute's state event");
    assert!(
        !after[muted_at..]
            .iter()
            .any(|(_, e)| matches!(e, Event::Level(_))),
        "a level event after the mute: {after:?}"
    );
}

#[test]
fn a_level_only_subscriber_and_a_released_mic_get_nothing_while_muted() {
    use hardmute_ipc::{DaemonOption, Event};
    let daemon = TestDaemon::start();
    let mut controller = daemon.client();
    controller
        .set_option(DaemonOption::ReleaseOnMute(true))
        .unwrap();
    let mut client = daemon.client();
    client.subscribe_level().unwrap();
    // Muted with the physical mic released: after 600 ms of level subscription, the next
    // message on this connection is the answer to a status request, no level event before it.
    std::thread::sleep(Duration::from_millis(600));
    match answer(&mut client, b"{\"v\":1,\"id\":90,\"op\":\"status\"}\n") {
        ServerMessage::Response {
            id: 90,
            result: Reply::State(state),
            ..
        } => assert!(state.muted && !state.physical_open),
        other => panic!("nothing but the answer expected while muted: {other:?}"),
    }
    controller.unmute(ChangeSource::Cli).unwrap();
    // This connection did not `subscribe`: the first thing it gets is a level event.
    let level = match client.read_message().unwrap() {
        ServerMessage::Event {
            event: Event::Level(level),
            ..
        } => level,
        other => panic!("only level events on this connection: {other:?}"),
    };
    assert!(level.peak > 0.0, "{level:?}");
}

#[test]
fn the_hotkey_and_its_mode_are_daemon_options_saved_in_the_state() {
    use hardmute_ipc::{DaemonOption, HotkeyMode};
    let daemon = TestDaemon::start();
    let mut client = daemon.client();
    let initial = client.status().unwrap();
    assert_eq!(initial.hotkey.as_deref(), Some("Ctrl+Alt+M"));
    assert_eq!(initial.hotkey_mode, HotkeyMode::Toggle);
    let (_, mut events) = daemon.client().subscribe().unwrap();

    let state = client
        .set_option(DaemonOption::Hotkey("Ctrl+Shift+F9".into()))
        .unwrap();
    assert_eq!(state.hotkey.as_deref(), Some("Ctrl+Shift+F9"));
    let state = client
        .set_option(DaemonOption::HotkeyMode(HotkeyMode::PushToTalk))
        .unwrap();
    assert_eq!(state.hotkey_mode, HotkeyMode::PushToTalk);
    // Subscribers (the panel) learn both.
    assert_eq!(
        events.next().unwrap().unwrap().hotkey.as_deref(),
        Some("Ctrl+Shift+F9")
    );
    assert_eq!(
        events.next().unwrap().unwrap().hotkey_mode,
        HotkeyMode::PushToTalk
    );
    for bad in ["Ctrl+", "Ctrl Alt M", "+M", "Ctrl+Alt+M\n"] {
        let (kind, message) = daemon_error(client.set_option(DaemonOption::Hotkey(bad.into())));
        assert_eq!(kind, ErrorKind::BadRequest, "{bad:?}");
        assert!(message.contains("not a hotkey"), "{message}");
    }
    assert_eq!(
        client.status().unwrap().hotkey.as_deref(),
        Some("Ctrl+Shift+F9")
    );

    // Saved: a restart keeps them; "" is no hotkey at all. The old connections go first, as
    // they do when a real daemon process exits: on Windows, pipe instances of the stopped
    // in-process server that are still connected make the new server's "is another hardmuted
    // serving?" probe wait for a free instance (seen under wine: the test hung).
    drop(events);
    drop(client);
    let daemon = daemon.restart();
    let mut client = daemon.client();
    let state = client.status().unwrap();
    assert_eq!(state.hotkey.as_deref(), Some("Ctrl+Shift+F9"));
    assert_eq!(state.hotkey_mode, HotkeyMode::PushToTalk);
    let state = client
        .set_option(DaemonOption::Hotkey(String::new()))
        .unwrap();
    assert_eq!(state.hotkey, None);
}

/// Push-to-talk ends with the connection that holds it: the panel's connection closing while
/// the key is held (the panel quit, crashed, or lost the socket) mutes at once (fail closed).
#[test]
fn push_to_talk_held_by_a_connection_that_closes_is_muted() {
    let daemon = TestDaemon::start();
    let mut control = daemon.client();
    control
        .set_option(DaemonOption::HotkeyMode(
            hardmute_ipc::HotkeyMode::PushToTalk,
        ))
        .unwrap();
    // A released key (hotkey mute) leaves nothing held: closing after it changes nothing.
    {
        let mut panel = daemon.client();
        assert!(!panel.unmute(ChangeSource::Hotkey).unwrap().muted);
        assert!(panel.mute(ChangeSource::Hotkey).unwrap().muted);
    }
    control.unmute(ChangeSource::Cli).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !control.status().unwrap().muted,
        "an unmute by the CLI is not a hold"
    );
    control.mute(ChangeSource::Cli).unwrap();
    // Held, then the connection goes away.
    let mut panel = daemon.client();
    assert!(!panel.unmute(ChangeSource::Hotkey).unwrap().muted);
    drop(panel);
    wait_until("the held push-to-talk to end", || {
        control.status().unwrap().muted
    });
    assert_eq!(control.status().unwrap().source, ChangeSource::FailSafe);
    // In toggle mode a hotkey unmute is a toggle, not a hold: closing keeps it live.
    control
        .set_option(DaemonOption::HotkeyMode(hardmute_ipc::HotkeyMode::Toggle))
        .unwrap();
    {
        let mut panel = daemon.client();
        assert!(!panel.unmute(ChangeSource::Hotkey).unwrap().muted);
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(!control.status().unwrap().muted);
}

/// The child half of the next test: connects, holds push-to-talk, says so, waits to be killed.
#[test]
fn ptt_holder_child() {
    let Some(socket) = std::env::var_os("HARDMUTE_TEST_PTT_HOLDER") else {
        return; // only runs as the child process
    };
    let mut panel = Client::connect(Path::new(&socket)).unwrap();
    assert!(!panel.unmute(ChangeSource::Hotkey).unwrap().muted);
    println!("HOLDING");
    std::thread::sleep(Duration::from_secs(60));
}

/// The panel process is killed (SIGKILL: no chance to send a mute) while push-to-talk is held:
/// the daemon sees the connection close and mutes, well within one poll.
#[cfg(unix)]
#[test]
fn push_to_talk_panel_killed_while_held_is_muted() {
    use std::io::BufRead;
    let daemon = TestDaemon::start();
    let mut control = daemon.client();
    control
        .set_option(DaemonOption::HotkeyMode(
            hardmute_ipc::HotkeyMode::PushToTalk,
        ))
        .unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "ptt_holder_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("HARDMUTE_TEST_PTT_HOLDER", &daemon.socket)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("HOLDING") {
        line.clear();
        assert_ne!(out.read_line(&mut line).unwrap(), 0, "child ended early");
    }
    assert!(!control.status().unwrap().muted, "live while held");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    child.wait().unwrap();
    let killed = Instant::now();
    wait_until("the killed panel's hold to end", || {
        control.status().unwrap().muted
    });
    let took = killed.elapsed();
    eprintln!("muted {took:?} after the panel was killed (poll interval 200 ms)");
    assert_eq!(control.status().unwrap().source, ChangeSource::FailSafe);
}
