//! The wire format: one JSON document per line, in both directions.
//!
//! Client -> daemon, one request per line:
//! ```json
//! {"v":1,"id":7,"op":"mute","source":"cli"}
//! ```
//! Daemon -> client, one message per line, tagged by `type`:
//! ```json
//! {"type":"response","v":1,"id":7,"result":{"kind":"state","muted":true,...}}
//! {"type":"error","v":1,"id":7,"error":{"kind":"refused","message":"..."}}
//! {"type":"event","v":1,"event":{"kind":"state","muted":false,...}}
//! ```
//! Every request carries the protocol version `v` and an `id` chosen by the client; the
//! response (or error) echoes the `id`. An error the daemon could not tie to a request (the
//! line was not JSON, too large, the peer was refused) has `"id": null`.
//!
//! Parsing is two-staged on purpose: first the line must be valid JSON (else `bad_json`), then
//! `v` and `id` are read so every later error can echo the `id`, then the version is checked
//! before the operation is looked at, so a future client gets `unsupported_version` rather than
//! a confusing `unknown_request`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// The protocol version this crate speaks. Bump it on any incompatible change.
pub const PROTOCOL_VERSION: u32 = 1;

/// The longest line either side accepts, newline excluded. A longer line is refused with
/// [`ErrorKind::TooLarge`] without buffering more than this much of it.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Who asked for a change: the core's type, on the wire by its snake-case name.
pub use hardmute_core::control::ChangeSource;

/// Realtime-path counters, as the driver's control block reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Frames handed to apps (muted or not).
    pub frames_delivered: u64,
    /// Frames delivered as zeros (muted, underrun, fade start).
    pub frames_zeroed: u64,
    /// Delivery cycles that found too little bridge data.
    pub underruns: u64,
    /// Bridge pushes that found the ring full.
    pub overruns: u64,
    /// Non-zero samples an app read during a cycle that began after a mute was acknowledged.
    /// Only backends that can observe what apps read report it (the simulated one does);
    /// anything but 0 is a broken hard mute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonzero_samples_while_muted: Option<u64>,
}

/// The daemon's whole observable state: what `status` returns and `subscribe` streams.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The hard-mute flag as the driver holds it.
    pub muted: bool,
    /// Incremented by the driver on every change of `muted`.
    pub generation: u64,
    /// Who made the last change.
    pub source: ChangeSource,
    /// Which backend runs the virtual mic (`simulated`, `linux`, ...).
    pub backend: String,
    /// The physical input feeding the virtual mic; `None` = the system default input.
    pub device: Option<String>,
    /// Release the physical mic while muted (the OS mic indicator goes off).
    pub release_on_mute: bool,
    /// Start muted on every launch, whatever the last state was.
    pub start_muted: bool,
    /// Unmute fade-in length.
    pub fade_ms: u32,
    /// The global hotkey, as stored (the hotkey frontend interprets it); `None` = no hotkey.
    pub hotkey: Option<String>,
    /// How the hotkey acts. Absent from daemons older than this field: toggle.
    #[serde(default)]
    pub hotkey_mode: HotkeyMode,
    /// Whether the bridge currently holds the physical mic open.
    pub physical_open: bool,
    pub counters: Counters,
    /// Set when the driver refused this user control of the virtual mic because another user
    /// owns it: why, for the status line and the panel. Absent (None) otherwise, and from
    /// daemons older than this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_owner: Option<String>,
    /// The OS's default input (its stable id) as hardmuted last read it; `None` = unknown
    /// (this backend does not read the OS default, or reading it failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_input: Option<String>,
    /// Whether apps that record "the default input" record the HardMute Microphone. `false` =
    /// such apps hear the room whatever the mute says: show it plainly, with the one-step fix
    /// (`protect_default`, `hardmute protect`). `None` = unknown (as `default_input`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_input_protected: Option<bool>,
    /// The physical-mic guard hardmuted itself holds (macOS hog mode, Windows exclusive mode):
    /// whether it is on and whether it holds the mic now. `None` = this backend has no
    /// daemon-held guard (Linux: the guard is PipeWire/WirePlumber configuration, `hardmute
    /// guard status`), and from daemons older than this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard: Option<GuardState>,
}

/// The daemon-held physical-mic guard ([`DaemonOption::Guard`]), as `status` reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardState {
    /// The setting.
    pub on: bool,
    /// Whether hardmuted holds the physical mic so no other app can open it right now (hog mode
    /// taken, or the exclusive-mode stream running). Only ever true while `on`.
    pub holds: bool,
    /// Why it does not hold while on (another process hogs the device, exclusive mode refused,
    /// no input), for `status` and `check`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why_not: Option<String>,
}

/// How the global hotkey acts. Stored by the daemon, interpreted by the hotkey frontend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HotkeyMode {
    /// Each press flips muted/live.
    #[default]
    Toggle,
    /// Live only while held.
    PushToTalk,
}

impl fmt::Display for HotkeyMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Toggle => "toggle",
            Self::PushToTalk => "push_to_talk",
        })
    }
}

/// The input level of the physical mic as apps receive it through the HardMute Microphone,
/// over one interval (see [`Command::SubscribeLevel`]). Linear full scale: 0.0..=1.0.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Level {
    /// Largest absolute sample in the interval.
    pub peak: f32,
    /// Root mean square of the interval's samples (all channels).
    pub rms: f32,
}

/// At most this many `level` events per second are sent to a level subscriber.
pub const LEVEL_MAX_HZ: u32 = 20;

/// A physical input that can feed the virtual mic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputDevice {
    /// Stable identifier, what `select_device` takes.
    pub name: String,
    /// Human-readable name.
    pub description: String,
    /// The OS's default input.
    pub is_default: bool,
}

/// What a listener has open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ListenTarget {
    /// The HardMute Microphone (gated).
    Virtual,
    /// A physical mic directly (not gated by HardMute).
    Physical { name: String },
}

/// A process capturing audio ("who is listening").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    pub app: String,
    pub pid: Option<u32>,
    pub binary: Option<String>,
    pub target: ListenTarget,
    /// HardMute's own capture of the physical mic (the bridge feeding the HardMute Microphone),
    /// as the backend established it from what the OS verified (the capture's process is
    /// hardmuted's own pid), never from a name: `app` is whatever the process calls itself.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub own: bool,
}

/// A daemon option settable at runtime.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "name", content = "value", rename_all = "snake_case")]
pub enum DaemonOption {
    ReleaseOnMute(bool),
    StartMuted(bool),
    /// The global hotkey (`Ctrl+Alt+M`); `""` = none. The daemon only stores it (and refuses
    /// text that cannot be a key combination); the hotkey frontend grabs it.
    Hotkey(String),
    HotkeyMode(HotkeyMode),
    /// The physical-mic guard held by hardmuted (macOS: hog mode on the physical input;
    /// Windows: the physical mic opened in exclusive mode). Off by default. A backend without
    /// a daemon-held guard (Linux) refuses it.
    Guard(bool),
}

/// Declares the requests once: the [`Command`] enum (what serde reads and writes), its
/// [`Command::op`] names, and [`KNOWN_OPS`] (what the hand-written checks of [`parse_request`]
/// accept), so the three cannot drift apart.
macro_rules! commands {
    ($(
        $(#[$meta:meta])*
        $variant:ident $({ $($(#[$field_meta:meta])* $field:ident : $ty:ty),* $(,)? })?
            => $op:literal, required [$($required:literal),*], optional [$($optional:literal),*];
    )*) => {
        /// What a client asks for. Serialized flat into the request object, tagged by `op`.
        #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "op")]
        pub enum Command {
            $(
                $(#[$meta])*
                #[serde(rename = $op)]
                $variant $({ $($(#[$field_meta])* $field: $ty),* })?,
            )*
        }

        impl Command {
            /// The `op` string, for logs.
            pub fn op(&self) -> &'static str {
                match self {
                    $(Self::$variant { .. } => $op,)*
                }
            }
        }

        /// The operations this version knows (anything else is `unknown_request`), with the
        /// fields each one takes: (op, required, optional). Checked by hand because serde's
        /// `deny_unknown_fields` does not cover unit variants of a tagged enum, and a misspelt
        /// field must not silently fall back to a default (`select_device` without `device`
        /// would select the default input).
        const KNOWN_OPS: &[(&str, &[&str], &[&str])] = &[
            $(($op, &[$($required),*], &[$($optional),*]),)*
        ];
    };
}

commands! {
    Status => "status", required [], optional [];
    Mute {
        #[serde(default = "default_source")]
        source: ChangeSource,
    } => "mute", required [], optional ["source"];
    Unmute {
        #[serde(default = "default_source")]
        source: ChangeSource,
    } => "unmute", required [], optional ["source"];
    Toggle {
        #[serde(default = "default_source")]
        source: ChangeSource,
    } => "toggle", required [], optional ["source"];
    /// Replies with the current state, then streams a `state` event per change on the same
    /// connection. Requests may still be sent on a subscribed connection.
    Subscribe => "subscribe", required [], optional [];
    Devices => "devices", required [], optional [];
    /// `device: null` selects the system default input.
    SelectDevice {
        device: Option<String>,
    } => "select_device", required ["device"], optional [];
    Listeners => "listeners", required [], optional [];
    SetOption {
        option: DaemonOption,
    } => "set_option", required ["option"], optional [];
    /// Replies `level_subscribed`, then streams `level` events (at most [`LEVEL_MAX_HZ`] per
    /// second) on the same connection, only while the mic is live and the physical mic open:
    /// nothing about the room is sent while muted (docs/design.md, invariant 3). Opt-in and
    /// separate from `subscribe`, so clients that do not draw a meter never receive it.
    SubscribeLevel => "subscribe_level", required [], optional [];
    /// Makes the HardMute Microphone the OS's default input again (the user had picked
    /// another); replies with the state. The input the user had picked becomes HardMute's
    /// physical source unless they chose one by hand.
    ProtectDefault => "protect_default", required [], optional [];
    /// Gives the default input back to the one HardMute replaced (only while HardMute holds
    /// it) and forgets the claim (`hardmute uninstall`); replies with the state.
    RestoreDefault => "restore_default", required [], optional [];
}

fn default_source() -> ChangeSource {
    ChangeSource::OtherClient
}

fn known_op_names() -> String {
    KNOWN_OPS
        .iter()
        .map(|(op, _, _)| *op)
        .collect::<Vec<_>>()
        .join(", ")
}

/// One request line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub v: u32,
    pub id: u64,
    pub command: Command,
}

impl Request {
    pub fn new(id: u64, command: Command) -> Self {
        Self {
            v: PROTOCOL_VERSION,
            id,
            command,
        }
    }

    /// The request as one line, newline included.
    pub fn to_line(&self) -> String {
        // Serializing a tagged enum of plain data cannot fail.
        let mut object = match serde_json::to_value(&self.command) {
            Ok(Value::Object(map)) => map,
            _ => unreachable!("a Command always serializes to a JSON object"),
        };
        object.insert("v".into(), self.v.into());
        object.insert("id".into(), self.id.into());
        let mut line = Value::Object(object).to_string();
        line.push('\n');
        line
    }
}

/// The typed error kinds. Stable strings on the wire; frontends match on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The line is not JSON (or not UTF-8).
    BadJson,
    /// Valid JSON, but not a well-formed request (missing `v`/`id`/`op`, wrong field types,
    /// unknown fields).
    BadRequest,
    /// The line exceeds [`MAX_LINE_BYTES`].
    TooLarge,
    /// The connection ended in the middle of a line.
    Truncated,
    /// The request's `v` is not [`PROTOCOL_VERSION`].
    UnsupportedVersion,
    /// `op` names no known operation.
    UnknownRequest,
    /// The peer is not allowed to talk to this daemon (another user), or the change is not
    /// allowed.
    Refused,
    /// `select_device` named an input that does not exist.
    UnknownDevice,
    /// The backend (driver, audio server) failed.
    Backend,
    /// Too many connections.
    Busy,
    /// The daemon is stopping.
    ShuttingDown,
    /// The virtual microphone belongs to another user of this machine: this user's daemon may
    /// add mute, but not clear it or feed the device (the driver decided; see `State::not_owner`).
    NotOwner,
    /// An error kind this version of the crate does not know (a newer daemon).
    #[serde(other)]
    Unknown,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadJson => "bad_json",
            Self::BadRequest => "bad_request",
            Self::TooLarge => "too_large",
            Self::Truncated => "truncated",
            Self::UnsupportedVersion => "unsupported_version",
            Self::UnknownRequest => "unknown_request",
            Self::Refused => "refused",
            Self::UnknownDevice => "unknown_device",
            Self::Backend => "backend",
            Self::Busy => "busy",
            Self::ShuttingDown => "shutting_down",
            Self::NotOwner => "not_owner",
            Self::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error as sent on the wire: a kind to match on and a message for humans.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub kind: ErrorKind,
    pub message: String,
}

impl ErrorBody {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.kind)
    }
}

impl std::error::Error for ErrorBody {}

/// A request that could not be parsed, with the `id` when it could be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub id: Option<u64>,
    pub error: ErrorBody,
}

/// The successful result of a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reply {
    /// status, mute, unmute, toggle, subscribe, select_device, set_option.
    State(State),
    Devices {
        devices: Vec<InputDevice>,
    },
    Listeners {
        listeners: Vec<Listener>,
    },
    /// subscribe_level: `level` events follow at most `hz` times a second, while live.
    LevelSubscribed {
        hz: u32,
    },
}

/// Something the daemon tells a subscribed client without being asked.
// A `State` is a few hundred bytes and `Level` two floats; events are at most `LEVEL_MAX_HZ` a
// second and cloned per subscriber anyway, so boxing the state would buy nothing measurable.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// After `subscribe`: the state changed.
    State(State),
    /// After `subscribe_level`: the level over the last interval (only while live).
    Level(Level),
    /// An event kind this version of the crate does not know (a newer daemon); ignore it.
    #[serde(other)]
    Unknown,
}

/// One line from the daemon.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    Response {
        v: u32,
        id: u64,
        result: Reply,
    },
    Error {
        v: u32,
        id: Option<u64>,
        error: ErrorBody,
    },
    Event {
        v: u32,
        event: Event,
    },
}

impl ServerMessage {
    pub fn response(id: u64, result: Reply) -> Self {
        Self::Response {
            v: PROTOCOL_VERSION,
            id,
            result,
        }
    }

    pub fn error(id: Option<u64>, error: ErrorBody) -> Self {
        Self::Error {
            v: PROTOCOL_VERSION,
            id,
            error,
        }
    }

    pub fn event(event: Event) -> Self {
        Self::Event {
            v: PROTOCOL_VERSION,
            event,
        }
    }

    /// The message as one line, newline included.
    pub fn to_line(&self) -> String {
        let mut line = serde_json::to_string(self).expect("server messages are plain data");
        line.push('\n');
        line
    }

    /// Parses one line from the daemon (newline optional).
    pub fn parse(line: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(line)
    }
}

/// Parses one request line (without its newline). Never panics, whatever the input; every
/// failure is a typed error carrying the request `id` when it could be read.
pub fn parse_request(line: &[u8]) -> Result<Request, ParseError> {
    let fail = |id, kind, message: String| {
        Err(ParseError {
            id,
            error: ErrorBody::new(kind, message),
        })
    };
    if line.len() > MAX_LINE_BYTES {
        return fail(
            None,
            ErrorKind::TooLarge,
            format!("request line longer than {MAX_LINE_BYTES} bytes"),
        );
    }
    let value: Value = match serde_json::from_slice(line) {
        Ok(value) => value,
        Err(e) => {
            return fail(
                None,
                ErrorKind::BadJson,
                format!("request is not valid JSON: {e}"),
            )
        }
    };
    let Value::Object(mut object) = value else {
        return fail(
            None,
            ErrorKind::BadRequest,
            "request must be a JSON object".into(),
        );
    };
    let id = match object.remove("id") {
        Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64(),
        Some(_) => {
            return fail(
                None,
                ErrorKind::BadRequest,
                "\"id\" must be a non-negative integer".into(),
            )
        }
        None => return fail(None, ErrorKind::BadRequest, "request has no \"id\"".into()),
    };
    let v = match object.remove("v") {
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) => v,
            None => {
                return fail(
                    id,
                    ErrorKind::BadRequest,
                    "\"v\" must be a non-negative integer".into(),
                )
            }
        },
        Some(_) => {
            return fail(
                id,
                ErrorKind::BadRequest,
                "\"v\" must be a non-negative integer".into(),
            )
        }
        None => {
            return fail(
                id,
                ErrorKind::BadRequest,
                "request has no protocol version \"v\"".into(),
            )
        }
    };
    if v != u64::from(PROTOCOL_VERSION) {
        return fail(
            id,
            ErrorKind::UnsupportedVersion,
            format!("protocol version {v} is not supported; this daemon speaks version {PROTOCOL_VERSION}"),
        );
    }
    let (op, required, optional) = match object.get("op") {
        Some(Value::String(op)) => match KNOWN_OPS.iter().find(|(known, _, _)| known == op) {
            Some(entry) => *entry,
            None => {
                let op: String = op.chars().take(64).collect();
                return fail(
                    id,
                    ErrorKind::UnknownRequest,
                    format!("unknown request {op:?}; known: {}", known_op_names()),
                );
            }
        },
        Some(_) => return fail(id, ErrorKind::BadRequest, "\"op\" must be a string".into()),
        None => return fail(id, ErrorKind::BadRequest, "request has no \"op\"".into()),
    };
    if let Some(field) = required.iter().find(|f| !object.contains_key(**f)) {
        return fail(
            id,
            ErrorKind::BadRequest,
            format!("{op:?} needs the field {field:?}"),
        );
    }
    if let Some(field) = object.keys().find(|k| {
        k.as_str() != "op" && !required.contains(&k.as_str()) && !optional.contains(&k.as_str())
    }) {
        let field: String = field.chars().take(64).collect();
        return fail(
            id,
            ErrorKind::BadRequest,
            format!("{op:?} takes no field {field:?}"),
        );
    }
    match serde_json::from_value::<Command>(Value::Object(object)) {
        Ok(command) => Ok(Request {
            v: PROTOCOL_VERSION,
            id: id.unwrap_or_default(),
            command,
        }),
        Err(e) => fail(id, ErrorKind::BadRequest, format!("malformed request: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_of(line: &str) -> (Option<u64>, ErrorKind) {
        let e = parse_request(line.as_bytes()).expect_err(line);
        (e.id, e.error.kind)
    }

    #[test]
    fn every_command_round_trips_through_a_line() {
        let commands = [
            Command::Status,
            Command::Mute {
                source: ChangeSource::Cli,
            },
            Command::Unmute {
                source: ChangeSource::Hotkey,
            },
            Command::Toggle {
                source: ChangeSource::Panel,
            },
            Command::Subscribe,
            Command::Devices,
            Command::SelectDevice {
                device: Some("alsa:hw0".into()),
            },
            Command::SelectDevice { device: None },
            Command::Listeners,
            Command::SetOption {
                option: DaemonOption::ReleaseOnMute(true),
            },
            Command::SetOption {
                option: DaemonOption::StartMuted(false),
            },
            Command::SetOption {
                option: DaemonOption::Hotkey("Ctrl+Shift+F9".into()),
            },
            Command::SetOption {
                option: DaemonOption::Hotkey(String::new()),
            },
            Command::SetOption {
                option: DaemonOption::HotkeyMode(HotkeyMode::PushToTalk),
            },
            Command::SetOption {
                option: DaemonOption::Guard(true),
            },
            Command::SubscribeLevel,
            Command::ProtectDefault,
            Command::RestoreDefault,
        ];
        let mut ops: Vec<&str> = commands.iter().map(Command::op).collect();
        for (i, command) in commands.into_iter().enumerate() {
            let request = Request::new(i as u64 + 100, command);
            let line = request.to_line();
            assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'));
            assert!(line.contains(&format!("\"op\":\"{}\"", request.command.op())));
            let parsed = parse_request(line.trim_end().as_bytes()).expect(&line);
            assert_eq!(parsed, request, "{line}");
        }
        // Every operation the parser knows was exercised above.
        ops.dedup();
        let known: Vec<&str> = KNOWN_OPS.iter().map(|(op, _, _)| *op).collect();
        assert_eq!(ops, known);
    }

    #[test]
    fn typed_errors_for_each_kind_of_bad_line() {
        assert_eq!(
            kind_of("{\"v\":1,\"id\":1,\"op\":\"sta"),
            (None, ErrorKind::BadJson)
        );
        assert_eq!(kind_of("\u{1}garbage"), (None, ErrorKind::BadJson));
        assert_eq!(kind_of("[1,2]"), (None, ErrorKind::BadRequest));
        assert_eq!(
            kind_of("{\"v\":1,\"op\":\"status\"}"),
            (None, ErrorKind::BadRequest)
        );
        assert_eq!(
            kind_of("{\"v\":1,\"id\":-1,\"op\":\"status\"}"),
            (None, ErrorKind::BadRequest)
        );
        assert_eq!(
            kind_of("{\"id\":4,\"op\":\"status\"}"),
            (Some(4), ErrorKind::BadRequest)
        );
        assert_eq!(
            kind_of("{\"v\":2,\"id\":5,\"op\":\"status\"}"),
            (Some(5), ErrorKind::UnsupportedVersion)
        );
        assert_eq!(
            kind_of("{\"v\":1,\"id\":6,\"op\":\"explode\"}"),
            (Some(6), ErrorKind::UnknownRequest)
        );
        assert_eq!(
            kind_of("{\"v\":1,\"id\":7,\"op\":3}"),
            (Some(7), ErrorKind::BadRequest)
        );
        assert_eq!(
            kind_of("{\"v\":1,\"id\":8,\"op\":\"mute\",\"source\":\"martian\"}"),
            (Some(8), ErrorKind::BadRequest)
        );
        assert_eq!(
            kind_of("{\"v\":1,\"id\":9,\"op\":\"status\",\"extra\":1}"),
            (Some(9), ErrorKind::BadRequest)
        );
        assert_eq!(
            kind_of("{\"v\":1,\"id\":10,\"op\":\"select_device\"}"),
            (Some(10), ErrorKind::BadRequest)
        );
        let huge = format!(
            "{{\"v\":1,\"id\":1,\"op\":\"status\",\"pad\":\"{}\"}}",
            "x".repeat(MAX_LINE_BYTES)
        );
        assert_eq!(kind_of(&huge), (None, ErrorKind::TooLarge));
    }

    #[test]
    fn mute_without_source_is_attributed_to_an_other_client() {
        let r = parse_request(br#"{"v":1,"id":3,"op":"mute"}"#).unwrap();
        assert_eq!(
            r.command,
            Command::Mute {
                source: ChangeSource::OtherClient
            }
        );
    }

    #[test]
    fn server_messages_round_trip_and_unknown_error_kinds_survive() {
        let state = State {
            muted: true,
            generation: 7,
            source: ChangeSource::Cli,
            backend: "simulated".into(),
            device: None,
            release_on_mute: false,
            start_muted: false,
            fade_ms: 5,
            hotkey: Some("Ctrl+Alt+M".into()),
            hotkey_mode: HotkeyMode::PushToTalk,
            physical_open: true,
            counters: Counters {
                nonzero_samples_while_muted: Some(0),
                ..Counters::default()
            },
            not_owner: None,
            default_input: Some("alsa_input.usb".into()),
            default_input_protected: Some(false),
            guard: None,
        };
        let refused = State {
            not_owner: Some("uid 502 owns the HardMute Microphone".into()),
            ..state.clone()
        };
        let guarded = State {
            guard: Some(GuardState {
                on: true,
                holds: false,
                why_not: Some("pid 77 holds hog mode on the built-in mic".into()),
            }),
            ..state.clone()
        };
        // Older daemons send no `not_owner` or `guard`; None is not sent either, and a state
        // line without them parses (as None).
        let line = ServerMessage::event(Event::State(state.clone())).to_line();
        assert!(!line.contains("not_owner"), "{line}");
        assert!(!line.contains("guard"), "{line}");
        let guard_line = ServerMessage::response(1, Reply::State(guarded.clone())).to_line();
        assert!(
            guard_line.contains(r#""guard":{"on":true,"holds":false,"why_not":"pid 77"#),
            "{guard_line}"
        );
        for message in [
            ServerMessage::response(1, Reply::State(refused)),
            ServerMessage::response(1, Reply::State(guarded)),
            ServerMessage::error(None, ErrorBody::new(ErrorKind::NotOwner, "uid 502 owns it")),
            ServerMessage::response(1, Reply::State(state.clone())),
            ServerMessage::event(Event::State(state)),
            ServerMessage::response(3, Reply::LevelSubscribed { hz: LEVEL_MAX_HZ }),
            ServerMessage::event(Event::Level(Level {
                peak: 0.5,
                rms: 0.125,
            })),
            ServerMessage::error(None, ErrorBody::new(ErrorKind::TooLarge, "big")),
            ServerMessage::response(
                2,
                Reply::Listeners {
                    listeners: vec![
                        Listener {
                            app: "zoom".into(),
                            pid: Some(42),
                            binary: None,
                            target: ListenTarget::Physical {
                                name: "hw:0".into(),
                            },
                            own: false,
                        },
                        Listener {
                            app: "hardmuted bridge".into(),
                            pid: Some(7),
                            binary: None,
                            target: ListenTarget::Physical {
                                name: "hw:0".into(),
                            },
                            own: true,
                        },
                    ],
                },
            ),
        ] {
            let line = message.to_line();
            assert_eq!(
                ServerMessage::parse(line.as_bytes()).unwrap(),
                message,
                "{line}"
            );
        }
        let future = br#"{"type":"error","v":1,"id":3,"error":{"kind":"quota","message":"m"}}"#;
        match ServerMessage::parse(future).unwrap() {
            ServerMessage::Error { error, .. } => assert_eq!(error.kind, ErrorKind::Unknown),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_listener_is_own_only_when_the_daemon_says_so() {
        // A daemon that predates `own` (or a listener that is not HardMute's) leaves it out.
        let line = br#"{"type":"response","v":1,"id":9,"result":{"kind":"listeners","listeners":[{"app":"hardmuted bridge","pid":4,"binary":null,"target":{"kind":"virtual"}}]}}"#;
        let ServerMessage::Response {
            result: Reply::Listeners { listeners },
            ..
        } = ServerMessage::parse(line).unwrap()
        else {
            panic!("not a listeners reply");
        };
        assert!(
            !listeners[0].own,
            "a name does not make a capture HardMute's"
        );
        let json = serde_json::to_string(&listeners[0]).unwrap();
        assert!(!json.contains("own"), "{json}");
        let own = Listener {
            own: true,
            ..listeners[0].clone()
        };
        assert!(serde_json::to_string(&own)
            .unwrap()
            .contains(r#""own":true"#));
    }

    #[test]
    fn the_level_feed_on_the_wire() {
        // The request of docs/panel.md, byte for byte.
        let r = parse_request(br#"{"v":1,"id":12,"op":"subscribe_level"}"#).unwrap();
        assert_eq!(r, Request::new(12, Command::SubscribeLevel));
        assert_eq!(
            kind_of(r#"{"v":1,"id":13,"op":"subscribe_level","hz":60}"#),
            (Some(13), ErrorKind::BadRequest),
            "the rate is the daemon's, not the client's"
        );
        let reply = ServerMessage::response(12, Reply::LevelSubscribed { hz: 20 }).to_line();
        assert_eq!(
            reply,
            "{\"type\":\"response\",\"v\":1,\"id\":12,\"result\":{\"kind\":\"level_subscribed\",\"hz\":20}}\n"
        );
        let event = ServerMessage::parse(
            br#"{"type":"event","v":1,"event":{"kind":"level","peak":0.42,"rms":0.11}}"#,
        )
        .unwrap();
        assert_eq!(
            event,
            ServerMessage::event(Event::Level(Level {
                peak: 0.42,
                rms: 0.11
            }))
        );
        // A newer daemon's event kinds are ignorable, not a protocol error.
        let future = br#"{"type":"event","v":1,"event":{"kind":"spectrum","bins":[1,2]}}"#;
        assert_eq!(
            ServerMessage::parse(future).unwrap(),
            ServerMessage::event(Event::Unknown)
        );
    }

    #[test]
    fn hotkey_options_on_the_wire_and_old_states_default_to_toggle() {
        let r = parse_request(
            br#"{"v":1,"id":4,"op":"set_option","option":{"name":"hotkey_mode","value":"push_to_talk"}}"#,
        )
        .unwrap();
        assert_eq!(
            r.command,
            Command::SetOption {
                option: DaemonOption::HotkeyMode(HotkeyMode::PushToTalk)
            }
        );
        assert_eq!(
            kind_of(r#"{"v":1,"id":5,"op":"set_option","option":{"name":"hotkey","value":3}}"#),
            (Some(5), ErrorKind::BadRequest)
        );
        // A state from a daemon that predates hotkey_mode.
        let old = br#"{"muted":true,"generation":1,"source":"cli","backend":"simulated","device":null,"release_on_mute":false,"start_muted":false,"fade_ms":5,"hotkey":"Ctrl+Alt+M","physical_open":true,"counters":{"frames_delivered":0,"frames_zeroed":0,"underruns":0,"overruns":0}}"#;
        let state: State = serde_json::from_slice(old).unwrap();
        assert_eq!(state.hotkey_mode, HotkeyMode::Toggle);
        assert_eq!(state.guard, None);
    }

    #[test]
    fn the_guard_option_on_the_wire() {
        let r = parse_request(
            br#"{"v":1,"id":6,"op":"set_option","option":{"name":"guard","value":true}}"#,
        )
        .unwrap();
        assert_eq!(
            r.command,
            Command::SetOption {
                option: DaemonOption::Guard(true)
            }
        );
        assert_eq!(
            kind_of(r#"{"v":1,"id":7,"op":"set_option","option":{"name":"guard","value":"on"}}"#),
            (Some(7), ErrorKind::BadRequest)
        );
    }
}
