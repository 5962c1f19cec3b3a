//! The socket side: accept, check the peer, then one reader and one writer thread per
//! connection. Threads, not async: a handful of local clients at most.

use crate::daemon::{Daemon, Outbox};
use hardmute_ipc::framing::{LineError, LineReader};
use hardmute_ipc::transport::{Connection, PeerCheck, SocketListener};
use hardmute_ipc::{
    parse_request, Command, ErrorBody, ErrorKind, Reply, ServerMessage, LEVEL_MAX_HZ,
    MAX_LINE_BYTES,
};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// More simultaneous connections than this are refused with `busy`.
pub const MAX_CONNECTIONS: usize = 32;
/// Messages queued for one connection before a subscriber counts as stuck.
const OUTBOX_DEPTH: usize = 256;
/// How often changes made outside the daemon are looked for.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// A daemon serving its socket. [`RunningServer::shutdown`] stops it cleanly.
pub struct RunningServer {
    daemon: Arc<Daemon>,
    stop: Arc<AtomicBool>,
    socket: PathBuf,
    accept_thread: Option<JoinHandle<()>>,
    poll_thread: Option<JoinHandle<()>>,
    level_thread: Option<JoinHandle<()>>,
}

impl RunningServer {
    /// Binds `socket` and serves `daemon` on it from background threads.
    pub fn start(daemon: Daemon, socket: &Path) -> io::Result<Self> {
        let listener = SocketListener::bind(socket)?;
        log::info!("listening on {}", socket.display());
        let daemon = Arc::new(daemon);
        let stop = Arc::new(AtomicBool::new(false));
        let accept_thread = {
            let (daemon, stop) = (daemon.clone(), stop.clone());
            thread::Builder::new()
                .name("ipc-accept".into())
                .spawn(move || accept_loop(listener, daemon, stop))?
        };
        let poll_thread = {
            let (daemon, stop) = (daemon.clone(), stop.clone());
            thread::Builder::new()
                .name("state-poll".into())
                .spawn(move || {
                    while !stop.load(Ordering::Acquire) {
                        thread::sleep(POLL_INTERVAL);
                        daemon.poll_changes();
                    }
                })?
        };
        let level_thread = {
            let (daemon, stop) = (daemon.clone(), stop.clone());
            let interval = Duration::from_millis(1000 / u64::from(LEVEL_MAX_HZ));
            thread::Builder::new()
                .name("level-feed".into())
                .spawn(move || {
                    while !stop.load(Ordering::Acquire) {
                        thread::sleep(interval);
                        daemon.publish_level();
                    }
                })?
        };
        Ok(Self {
            daemon,
            stop,
            socket: socket.to_owned(),
            accept_thread: Some(accept_thread),
            poll_thread: Some(poll_thread),
            level_thread: Some(level_thread),
        })
    }

    pub fn daemon(&self) -> &Daemon {
        &self.daemon
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Stops accepting, removes the socket, stops the backend (muted-or-silent) and saves.
    pub fn shutdown(mut self) {
        self.stop_threads();
        self.daemon.shutdown();
    }

    fn stop_threads(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(accept) = self.accept_thread.take() {
            // The accept loop is blocked in accept(): a connection of our own wakes it. If the
            // socket file was deleted under us nothing can wake it; leave that thread behind
            // rather than hang the shutdown.
            match Connection::connect(&self.socket) {
                Ok(_) => {
                    let _ = accept.join();
                }
                Err(e) => log::warn!("could not wake the accept loop ({e}); not waiting for it"),
            }
        }
        for thread in [self.poll_thread.take(), self.level_thread.take()]
            .into_iter()
            .flatten()
        {
            let _ = thread.join();
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.stop_threads();
        self.daemon.shutdown();
    }
}

fn accept_loop(listener: SocketListener, daemon: Arc<Daemon>, stop: Arc<AtomicBool>) {
    let active = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::Acquire) {
        let connection = match listener.accept() {
            Ok(connection) => connection,
            Err(e) => {
                log::warn!("accept failed: {e}");
                thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if stop.load(Ordering::Acquire) {
            break;
        }
        let (daemon, active) = (daemon.clone(), active.clone());
        let spawned = thread::Builder::new()
            .name("ipc-conn".into())
            .spawn(move || {
                let count = active.fetch_add(1, Ordering::AcqRel) + 1;
                serve_connection(connection, &daemon, count);
                active.fetch_sub(1, Ordering::AcqRel);
            });
        if let Err(e) = spawned {
            log::error!("could not start a connection thread: {e}");
        }
    }
    // Dropping the listener removes the socket file.
    drop(listener);
    log::info!("stopped listening");
}

/// Sends one message and gives up on the connection. Used before any request is read.
fn refuse(mut connection: Connection, kind: ErrorKind, message: &str) {
    let _ = connection.set_send_timeout(Some(Duration::from_secs(1)));
    let line = ServerMessage::error(None, ErrorBody::new(kind, message)).to_line();
    let _ = connection.write_all(line.as_bytes());
    let _ = connection.flush();
    // Give the client a moment to finish writing its request before the close, so it can read
    // the reason instead of failing its write. Bounded in time and bytes, nothing is parsed.
    let _ = connection.set_recv_timeout(Some(Duration::from_millis(250)));
    let mut sink = [0u8; 4096];
    for _ in 0..16 {
        match std::io::Read::read(&mut connection, &mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

fn serve_connection(connection: Connection, daemon: &Daemon, active: usize) {
    match connection.check_peer() {
        Ok(PeerCheck::SameUser { pid }) => log::debug!("client connected (pid {pid:?})"),
        Ok(PeerCheck::OtherUser { who }) => {
            log::warn!(
                "refused a connection from {who}: only the user running hardmuted may control it"
            );
            refuse(
                connection,
                ErrorKind::Refused,
                "hardmuted only accepts clients of the user it runs as",
            );
            return;
        }
        Err(e) => {
            log::warn!("refused a connection whose credentials could not be read: {e}");
            refuse(
                connection,
                ErrorKind::Refused,
                "could not verify the client's user",
            );
            return;
        }
    }
    if active > MAX_CONNECTIONS {
        log::warn!("refused a connection: {MAX_CONNECTIONS} already open");
        refuse(
            connection,
            ErrorKind::Busy,
            "too many connections to hardmuted",
        );
        return;
    }

    let (outbox, outgoing) = sync_channel::<ServerMessage>(OUTBOX_DEPTH);
    let writer = {
        let connection = connection.clone();
        thread::Builder::new()
            .name("ipc-write".into())
            .spawn(move || write_loop(connection, outgoing))
    };
    let Ok(writer) = writer else {
        log::error!("could not start a writer thread");
        return;
    };
    read_loop(LineReader::new(connection, MAX_LINE_BYTES), daemon, &outbox);
    drop(outbox);
    let _ = writer.join();
}

fn write_loop(mut connection: Connection, outgoing: Receiver<ServerMessage>) {
    for message in outgoing {
        if connection
            .write_all(message.to_line().as_bytes())
            .and_then(|()| connection.flush())
            .is_err()
        {
            break; // client gone; the reader sees it too
        }
    }
}

/// Serves one connection's requests. A push-to-talk hold this connection started (an unmute
/// by the hotkey while the hotkey mode is push-to-talk) ends with the connection: when the panel
/// dies or hangs up while the key is held, the mic is muted at once (fail closed).
fn read_loop(lines: LineReader<Connection>, daemon: &Daemon, outbox: &Outbox) {
    let mut holding_push_to_talk = false;
    serve_requests(lines, daemon, outbox, &mut holding_push_to_talk);
    if holding_push_to_talk && !daemon.is_stopping() {
        log::info!("the connection holding push-to-talk closed: muting");
        let mute = Command::Mute {
            source: hardmute_ipc::ChangeSource::FailSafe,
        };
        if let Err(e) = daemon.execute(0, mute, outbox) {
            log::error!("could not end push-to-talk: {}", e.message);
        }
    }
}

fn serve_requests(
    mut lines: LineReader<Connection>,
    daemon: &Daemon,
    outbox: &Outbox,
    holding_push_to_talk: &mut bool,
) {
    let (mut subscribed, mut level_subscribed) = (false, false);
    loop {
        let message = match lines.read_line() {
            Ok(None) => return,
            Ok(Some(line)) => match parse_request(line) {
                Err(bad) => {
                    log::debug!("bad request: {}", bad.error);
                    ServerMessage::error(bad.id, bad.error)
                }
                Ok(mut request) => {
                    log::debug!("request {} {}", request.id, request.command.op());
                    // A second subscribe on one connection would double every event: answer
                    // it with the state, as the first one did.
                    if request.command == Command::Subscribe {
                        if subscribed {
                            request.command = Command::Status;
                        }
                        subscribed = true;
                    }
                    // Likewise a second subscribe_level: answered, not registered twice.
                    if request.command == Command::SubscribeLevel {
                        if level_subscribed {
                            let reply = Reply::LevelSubscribed { hz: LEVEL_MAX_HZ };
                            if outbox.send(ServerMessage::response(request.id, reply)).is_err() {
                                return;
                            }
                            continue;
                        }
                        level_subscribed = true;
                    }
                    let hold = match &request.command {
                        Command::Unmute { source: hardmute_ipc::ChangeSource::Hotkey } => {
                            Some(daemon.hotkey_is_push_to_talk())
                        }
                        Command::Mute { .. } | Command::Toggle { .. } => Some(false),
                        _ => None,
                    };
                    let result = daemon.execute(request.id, request.command, outbox);
                    if let (Some(hold), Ok(_)) = (hold, &result) {
                        *holding_push_to_talk = hold;
                    }
                    match result {
                        Ok(Some(reply)) => ServerMessage::response(request.id, reply),
                        Ok(None) => continue,
                        Err(error) => ServerMessage::error(Some(request.id), error),
                    }
                }
            },
            Err(LineError::TooLarge) => ServerMessage::error(
                None,
                ErrorBody::new(
                    ErrorKind::TooLarge,
                    format!("request line longer than {MAX_LINE_BYTES} bytes; the rest of it is ignored"),
                ),
            ),
            Err(LineError::Truncated(n)) => {
                let message = format!("connection ended in the middle of a request ({n} bytes without a newline)");
                let _ = outbox.send(ServerMessage::error(None, ErrorBody::new(ErrorKind::Truncated, message)));
                return;
            }
            Err(LineError::Io(e)) => {
                log::debug!("connection read failed: {e}");
                return;
            }
        };
        // Blocks only this connection if its client does not read.
        if outbox.send(message).is_err() {
            return;
        }
    }
}
