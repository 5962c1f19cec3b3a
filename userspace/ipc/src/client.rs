//! A blocking client: what the CLI, the panel and the tray use to talk to hardmuted.

use crate::framing::{LineError, LineReader};
use crate::protocol::{
    ChangeSource, Command, DaemonOption, ErrorBody, Event, InputDevice, Listener, Reply, Request,
    ServerMessage, State, MAX_LINE_BYTES,
};
use crate::transport::{self, Connection};
use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a request waits for its answer. The daemon answers in milliseconds; a mute waits
/// for the realtime path, which takes at most one audio period.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub enum ClientError {
    /// Nobody is serving the socket.
    NotRunning { path: PathBuf, cause: io::Error },
    /// The daemon answered with a typed error.
    Daemon(ErrorBody),
    /// The connection failed after it was made.
    Io(io::Error),
    /// The daemon sent something this client does not understand.
    Protocol(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotRunning { path, cause } => {
                write!(
                    f,
                    "hardmuted is not running (nothing serves {}: {cause})",
                    path.display()
                )
            }
            Self::Daemon(e) => write!(f, "hardmuted: {e}"),
            Self::Io(e) => write!(f, "connection to hardmuted failed: {e}"),
            Self::Protocol(m) => write!(f, "unexpected message from hardmuted: {m}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

pub struct Client {
    writer: Connection,
    reader: LineReader<Connection>,
    next_id: u64,
    /// Events that arrived while waiting for a response.
    pending_events: VecDeque<Event>,
    path: PathBuf,
}

impl Client {
    /// Connects to `$HARDMUTE_SOCKET` or the per-user default socket.
    pub fn connect_default() -> Result<Self, ClientError> {
        Self::connect(&transport::socket_path()?)
    }

    pub fn connect(path: &Path) -> Result<Self, ClientError> {
        transport::check_socket_dir(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => ClientError::NotRunning {
                path: path.to_owned(),
                cause: e,
            },
            _ => ClientError::Io(e),
        })?;
        let connection = Connection::connect(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => ClientError::NotRunning {
                path: path.to_owned(),
                cause: e,
            },
            _ => ClientError::Io(e),
        })?;
        connection.set_recv_timeout(Some(REQUEST_TIMEOUT))?;
        connection.set_send_timeout(Some(REQUEST_TIMEOUT))?;
        Ok(Self {
            writer: connection.clone(),
            reader: LineReader::new(connection, MAX_LINE_BYTES),
            next_id: 1,
            pending_events: VecDeque::new(),
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sends one request and waits for its answer. Events that arrive meanwhile (on a
    /// subscribed connection) are kept for [`Subscription`].
    pub fn request(&mut self, command: Command) -> Result<Reply, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        if let Err(write_error) = self.send_raw(Request::new(id, command).to_line().as_bytes()) {
            // A daemon that refuses a connection says why and closes it, possibly before our
            // request was written: its message is still there to read.
            return match self.read_message() {
                Ok(ServerMessage::Error {
                    id: None, error, ..
                }) => Err(ClientError::Daemon(error)),
                _ => Err(write_error),
            };
        }
        loop {
            match self.read_message()? {
                ServerMessage::Response {
                    id: got, result, ..
                } if got == id => return Ok(result),
                ServerMessage::Error { id: got, error, .. } if got == Some(id) || got.is_none() => {
                    return Err(ClientError::Daemon(error))
                }
                ServerMessage::Event { event, .. } => self.pending_events.push_back(event),
                other => {
                    return Err(ClientError::Protocol(format!(
                        "answer to another request: {other:?}"
                    )))
                }
            }
        }
    }

    /// Writes raw bytes (tests use it to send malformed lines).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.writer.write_all(bytes)?;
        self.writer.flush()?;
        Ok(())
    }

    /// Reads the next message from the daemon, whatever it is.
    pub fn read_message(&mut self) -> Result<ServerMessage, ClientError> {
        match self.reader.read_line() {
            Ok(Some(line)) => ServerMessage::parse(line).map_err(|e| {
                ClientError::Protocol(format!("{e}: {}", String::from_utf8_lossy(line)))
            }),
            Ok(None) => Err(ClientError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "hardmuted closed the connection",
            ))),
            Err(LineError::TooLarge) => Err(ClientError::Protocol(
                "line from hardmuted too large".into(),
            )),
            Err(LineError::Truncated(_)) => Err(ClientError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "hardmuted closed the connection in the middle of a message",
            ))),
            Err(LineError::Io(e)) => Err(ClientError::Io(e)),
        }
    }

    fn expect_state(reply: Reply) -> Result<State, ClientError> {
        match reply {
            Reply::State(state) => Ok(state),
            other => Err(ClientError::Protocol(format!(
                "expected a state, got {other:?}"
            ))),
        }
    }

    pub fn status(&mut self) -> Result<State, ClientError> {
        Self::expect_state(self.request(Command::Status)?)
    }

    pub fn mute(&mut self, source: ChangeSource) -> Result<State, ClientError> {
        Self::expect_state(self.request(Command::Mute { source })?)
    }

    pub fn unmute(&mut self, source: ChangeSource) -> Result<State, ClientError> {
        Self::expect_state(self.request(Command::Unmute { source })?)
    }

    pub fn toggle(&mut self, source: ChangeSource) -> Result<State, ClientError> {
        Self::expect_state(self.request(Command::Toggle { source })?)
    }

    pub fn select_device(&mut self, device: Option<&str>) -> Result<State, ClientError> {
        Self::expect_state(self.request(Command::SelectDevice {
            device: device.map(str::to_owned),
        })?)
    }

    /// Makes the HardMute Microphone the OS's default input again.
    pub fn protect_default(&mut self) -> Result<State, ClientError> {
        Self::expect_state(self.request(Command::ProtectDefault)?)
    }

    /// Gives the default input back to the one HardMute replaced (uninstall).
    pub fn restore_default(&mut self) -> Result<State, ClientError> {
        Self::expect_state(self.request(Command::RestoreDefault)?)
    }

    pub fn set_option(&mut self, option: DaemonOption) -> Result<State, ClientError> {
        Self::expect_state(self.request(Command::SetOption { option })?)
    }

    pub fn devices(&mut self) -> Result<Vec<InputDevice>, ClientError> {
        match self.request(Command::Devices)? {
            Reply::Devices { devices } => Ok(devices),
            other => Err(ClientError::Protocol(format!(
                "expected devices, got {other:?}"
            ))),
        }
    }

    pub fn listeners(&mut self) -> Result<Vec<Listener>, ClientError> {
        match self.request(Command::Listeners)? {
            Reply::Listeners { listeners } => Ok(listeners),
            other => Err(ClientError::Protocol(format!(
                "expected listeners, got {other:?}"
            ))),
        }
    }

    /// Asks for `level` events on this connection (read them with
    /// [`Subscription::next_event`]). Returns the most events per second the daemon sends.
    /// A daemon without a level feed answers `unknown_request`.
    pub fn subscribe_level(&mut self) -> Result<u32, ClientError> {
        match self.request(Command::SubscribeLevel)? {
            Reply::LevelSubscribed { hz } => Ok(hz),
            other => Err(ClientError::Protocol(format!(
                "expected level_subscribed, got {other:?}"
            ))),
        }
    }

    /// Subscribes to state changes. Returns the current state and an iterator over every later
    /// state; the iterator blocks until the next change and ends when the daemon goes away.
    pub fn subscribe(mut self) -> Result<(State, Subscription), ClientError> {
        let state = Self::expect_state(self.request(Command::Subscribe)?)?;
        self.writer.set_recv_timeout(None)?;
        Ok((state, Subscription { client: self }))
    }
}

/// State changes streamed after [`Client::subscribe`].
pub struct Subscription {
    client: Client,
}

impl Subscription {
    /// Sends a request on the subscribed connection (events arriving meanwhile are kept).
    pub fn request(&mut self, command: Command) -> Result<Reply, ClientError> {
        self.client.request(command)
    }

    /// Also streams `level` events on this connection ([`Client::subscribe_level`]).
    pub fn subscribe_level(&mut self) -> Result<u32, ClientError> {
        // The read timeout was lifted for the event stream; a request still wants one.
        self.client.writer.set_recv_timeout(Some(REQUEST_TIMEOUT))?;
        let result = self.client.subscribe_level();
        self.client.writer.set_recv_timeout(None)?;
        result
    }

    /// The next event of any kind (state, level, or one this crate does not know); blocks
    /// until it arrives, `None` once the daemon has gone.
    pub fn next_event(&mut self) -> Option<Result<Event, ClientError>> {
        if let Some(event) = self.client.pending_events.pop_front() {
            return Some(Ok(event));
        }
        match self.client.read_message() {
            Ok(ServerMessage::Event { event, .. }) => Some(Ok(event)),
            Ok(ServerMessage::Error { error, .. }) => Some(Err(ClientError::Daemon(error))),
            Ok(other) => Some(Err(ClientError::Protocol(format!(
                "unexpected message: {other:?}"
            )))),
            Err(ClientError::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof => None,
            Err(e) => Some(Err(e)),
        }
    }
}

/// The states only: other events (level, unknown kinds) are skipped.
impl Iterator for Subscription {
    type Item = Result<State, ClientError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.next_event()? {
                Ok(Event::State(state)) => return Some(Ok(state)),
                Ok(_) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}
