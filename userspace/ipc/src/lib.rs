//! `hardmute-ipc`: the local protocol between `hardmuted` and its frontends.
//!
//! - [`protocol`]: the versioned JSON-lines messages and their typed errors;
//! - [`framing`]: newline framing with a hard line-length cap;
//! - [`transport`]: the per-user socket (Unix) / named pipe (Windows) and the peer check;
//! - [`client`]: a blocking client for the CLI, panel and tray.

pub mod client;
pub mod framing;
pub mod protocol;
pub mod single_instance;
pub mod transport;

pub use client::{Client, ClientError, Subscription};
pub use protocol::{
    parse_request, ChangeSource, Command, Counters, DaemonOption, ErrorBody, ErrorKind, Event,
    GuardState, HotkeyMode, InputDevice, Level, ListenTarget, Listener, ParseError, Reply, Request,
    ServerMessage, State, LEVEL_MAX_HZ, MAX_LINE_BYTES, PROTOCOL_VERSION,
};
