//! HardMute Microphone on PipeWire.
//!
//! The node apps record from, `hardmute_mic` ("HardMute Microphone"), is a lingering adapter
//! null-audio-sink that no client's connection owns: it outlives the daemon, so after a crash
//! apps keep recording from it and get zeros (fail closed, invariant 4) instead of being moved
//! to the physical mic by the session manager. The daemon only feeds it, through one
//! `pw_filter` whose process callback is the gate (`hardmute_core::deliver`): physical source
//! -> filter -> hardmute_mic, all in the same graph cycle.
//!
//! [`VirtualMic`] is the safe handle the daemon uses; it owns a PipeWire thread.

mod filter;
pub mod graph;
mod lock;
pub mod rt;
mod session;

// The core API under one short name.
pub(crate) use hardmute_core as hm_core;

use std::path::PathBuf;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;

pub use graph::{
    Captures, ListenerInfo, SourceInfo, UnknownSource, HARDMUTE_NODE_DESCRIPTION,
    HARDMUTE_NODE_NAME,
};
pub use hm_core::control::{Authority, ChangeSource, ControlBlock};

#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Physical source `node.name`; `None` = the default source, else the first one.
    pub source: Option<String>,
    /// While muted, remove the capture links so the physical source goes idle.
    pub release_on_mute: bool,
    /// The persisted state (a fresh install starts muted). Applied before anything is linked.
    pub initially_muted: bool,
    /// Where the single-instance lock lives (default: `$XDG_RUNTIME_DIR`).
    pub lock_dir: Option<PathBuf>,
    /// Unmute fade-in (default: `hardmute_core::gate::DEFAULT_FADE_MS`). Mute is always instant.
    pub fade_ms: Option<u32>,
}

#[derive(Debug)]
pub enum Error {
    Connect(String),
    AlreadyRunning(PathBuf),
    Lock(String),
    UnknownSource(UnknownSource),
    Filter(String),
    /// Only the owner may unmute (invariant 5).
    Refused,
    /// The realtime path did not acknowledge the change in time.
    NotEffective,
    Timeout(&'static str),
    Stopped,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Connect(m) => write!(f, "pipewire: {m}"),
            Error::AlreadyRunning(p) => write!(f, "another HardMute feeder holds {}", p.display()),
            Error::Lock(m) => write!(f, "lock: {m}"),
            Error::UnknownSource(u) => write!(f, "{u}"),
            Error::Filter(m) => write!(f, "gate filter: {m}"),
            Error::Refused => write!(f, "refused: only the owner may unmute"),
            Error::NotEffective => write!(f, "the realtime path did not acknowledge the change"),
            Error::Timeout(what) => write!(f, "timed out waiting for {what}"),
            Error::Stopped => write!(f, "the PipeWire thread has stopped"),
        }
    }
}

impl std::error::Error for Error {}

/// What the PipeWire thread last saw, for status/listeners commands.
#[derive(Debug, Clone, Default)]
pub struct Status {
    pub connected: bool,
    pub hardmute_node: Option<u32>,
    pub feeder_node: Option<u32>,
    pub channels: Vec<String>,
    pub source_wanted: Option<String>,
    /// The physical source currently linked into the gate (None: none, or released).
    pub source_linked: Option<String>,
    pub capture_links: usize,
    pub feed_links: usize,
    pub sources: Vec<SourceInfo>,
    pub listeners: Vec<ListenerInfo>,
    pub last_error: Option<String>,
}

pub struct VirtualMic {
    ctl: Arc<ControlBlock>,
    level: Arc<rt::LevelTap>,
    commands: pipewire::channel::Sender<session::Command>,
    status: Arc<Mutex<Status>>,
    thread: Option<JoinHandle<()>>,
    _lock: lock::InstanceLock,
}

const START_TIMEOUT: Duration = Duration::from_secs(10);
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

impl VirtualMic {
    /// Connects to PipeWire, finds or creates hardmute_mic, starts the gate filter and links.
    /// An unknown `config.source` does not fail: HardMute comes up muted and
    /// `status().last_error` lists the available sources.
    pub fn start(config: Config) -> Result<VirtualMic, Error> {
        let lock = lock::InstanceLock::acquire(config.lock_dir.clone())?;
        let ctl = Arc::new(ControlBlock::new(config.initially_muted));
        let level = Arc::new(rt::LevelTap::new());
        let status = Arc::new(Mutex::new(Status::default()));
        let (tx, rx) = pipewire::channel::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let settings = session::Settings {
            source: config.source,
            release_on_mute: config.release_on_mute,
            fade_ms: config.fade_ms.unwrap_or(hm_core::gate::DEFAULT_FADE_MS),
            level: level.clone(),
        };
        let thread = {
            let (ctl, status) = (ctl.clone(), status.clone());
            std::thread::Builder::new()
                .name("hardmute-pipewire".into())
                .spawn(move || session::run(settings, ctl, status, rx, ready_tx))
                .map_err(|e| Error::Connect(e.to_string()))?
        };
        let mut mic = VirtualMic {
            ctl,
            level,
            commands: tx,
            status,
            thread: Some(thread),
            _lock: lock,
        };
        match ready_rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(())) => Ok(mic),
            Ok(Err(e)) => {
                mic.stop();
                Err(e)
            }
            Err(_) => {
                mic.stop();
                Err(Error::Timeout("PipeWire start-up"))
            }
        }
    }

    /// The shared mute state (the realtime callback reads it every cycle).
    pub fn control(&self) -> &Arc<ControlBlock> {
        &self.ctl
    }

    /// The level of what the gate last delivered (one window of about 50 ms). Metered after
    /// the gate: while muted it is the zeros apps get.
    pub fn level(&self) -> rt::LevelReading {
        self.level.read()
    }

    pub fn is_muted(&self) -> bool {
        self.ctl.is_muted()
    }

    /// Sets hard mute. Returns only when the realtime path will use the new state: no cycle
    /// that started before this call can deliver after it returns (invariant 2). Then the
    /// links follow (release-on-mute).
    pub fn set_hard_mute(&self, muted: bool, source: ChangeSource) -> Result<(), Error> {
        self.ctl
            .set_muted(muted, source, hm_core::control::Authority::Owner)
            .map_err(|_| Error::Refused)?;
        // A cycle lasts at most a few ms; 2000 x 0.5 ms is a generous bound.
        if !self
            .ctl
            .wait_until_effective(|| std::thread::sleep(Duration::from_micros(500)), 2000)
        {
            return Err(Error::NotEffective);
        }
        let _ = self.commands.send(session::Command::MuteChanged);
        Ok(())
    }

    /// Chooses the physical source by `node.name` (`None` = follow the default). An unknown
    /// name is refused with the list of sources; the current source and the mute state stay.
    /// (An unknown `Config::source` at start-up, where there is no current choice, mutes.)
    pub fn select_source(&self, name: Option<String>) -> Result<(), Error> {
        let (tx, rx) = mpsc::channel();
        self.commands
            .send(session::Command::SelectSource(name, tx))
            .map_err(|_| Error::Stopped)?;
        rx.recv_timeout(REPLY_TIMEOUT).map_err(|_| Error::Stopped)?
    }

    /// Release the physical source while muted (its capture links removed; it goes idle).
    pub fn set_release_on_mute(&self, release: bool) -> Result<(), Error> {
        self.commands
            .send(session::Command::SetReleaseOnMute(release))
            .map_err(|_| Error::Stopped)
    }

    pub fn status(&self) -> Status {
        self.status.lock().clone()
    }

    pub fn sources(&self) -> Vec<SourceInfo> {
        self.status.lock().sources.clone()
    }

    pub fn listeners(&self) -> Vec<ListenerInfo> {
        self.status.lock().listeners.clone()
    }

    /// True while the PipeWire thread runs (false after the server went away).
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Leaves the graph cleanly: the filter and our links go, hardmute_mic stays (apps keep
    /// recording zeros). Does not wait on the server, which may already be gone.
    pub fn stop(&mut self) {
        let _ = self.commands.send(session::Command::Quit);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for VirtualMic {
    fn drop(&mut self) {
        self.stop();
    }
}
