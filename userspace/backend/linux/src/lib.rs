//! hardmuted's Linux backend: the controller of the gate that runs inside the PipeWire server
//! (`driver/linux/gate`, a LADSPA plugin hosted by PipeWire's module-filter-chain), the
//! [`LinuxBackend`] on top of it, and the default input through PipeWire's metadata
//! ([`default_input`]).
//!
//! The gate and both of its nodes (`hardmute_capture` before the gate, `hardmute_mic` after it)
//! exist whenever PipeWire runs, with or without this crate. With no live controller the gate
//! delivers zeros. [`Controller`] is what makes it a product:
//! - finds the gate's shared page (`page`), applies the user's state to it (a fresh page
//!   is muted) and beats its lease every `BEAT_MS` from the PipeWire thread;
//! - links the chosen physical source into `hardmute_capture` (lingering links, so they stay
//!   through a crash of the daemon; never HardMute itself, even when it is the default source),
//!   and removes any other link into it;
//! - reports whether the physical source is running, and who listens.
//!
//! `mute` returns only once no cycle of the gate can still use the old state (the core's
//! `cycle_seq` fence through the shared page).

mod backend;
pub mod default_input;
pub mod graph;
mod lock;
pub mod page;
mod session;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;

pub use backend::LinuxBackend;
pub use graph::{Captures, ListenerInfo, SourceInfo, UnknownSource};
pub use hardmute_core::control::{Authority, ChangeSource, ControlBlock, ControlSnapshot};
pub use hardmute_linux_gate::abi::{
    CAPTURE_NODE_NAME, PLUGIN_FILE as GATE_PLUGIN_FILE,
    SOURCE_NODE_DESCRIPTION as HARDMUTE_NODE_DESCRIPTION, SOURCE_NODE_NAME as HARDMUTE_NODE_NAME,
};

#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Physical source `node.name`; `None` = the default source, else the first one.
    pub source: Option<String>,
    /// While muted, remove the capture links so the physical source is released even while
    /// apps record (they get zeros either way).
    pub release_on_mute: bool,
    /// The persisted state (a fresh install starts muted), applied to the gate as soon as its
    /// page is found.
    pub initially_muted: bool,
    /// Where the single-instance lock lives (default: `$XDG_RUNTIME_DIR`).
    pub lock_dir: Option<PathBuf>,
    /// The gate's locator (default: `$XDG_RUNTIME_DIR/hardmute/gate`).
    pub locator: Option<PathBuf>,
    /// The unmute fade-in (ms) written to every page found; `None` leaves the gate's default.
    /// The gate only ever ramps audio in after an unmute; a mute is exact zeros at once.
    pub fade_ms: Option<u32>,
}

#[derive(Debug)]
pub enum Error {
    Connect(String),
    AlreadyRunning(PathBuf),
    Lock(String),
    UnknownSource(UnknownSource),
    /// Only the owner may unmute (invariant 5).
    Refused,
    /// The gate did not acknowledge the change in time.
    NotEffective,
    Timeout(&'static str),
    Stopped,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Connect(m) => write!(f, "pipewire: {m}"),
            Error::AlreadyRunning(p) => {
                write!(f, "another HardMute controller holds {}", p.display())
            }
            Error::Lock(m) => write!(f, "lock: {m}"),
            Error::UnknownSource(u) => write!(f, "{u}"),
            Error::Refused => write!(f, "refused: only the owner may unmute"),
            Error::NotEffective => write!(f, "the gate did not acknowledge the change"),
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
    /// `hardmute_mic` (apps record it) and `hardmute_capture` (the gate's input), by id.
    pub hardmute_node: Option<u32>,
    pub capture_node: Option<u32>,
    /// The gate's page is mapped (its locator target), and beaten.
    pub page: Option<String>,
    /// Why the page is not mapped (no locator yet: nothing has recorded since PipeWire
    /// started; a refused file; ...).
    pub page_error: Option<String>,
    pub source_wanted: Option<String>,
    /// The physical source currently linked into the gate (None: none, or released).
    pub source_linked: Option<String>,
    pub capture_links: usize,
    /// The linked physical source is `running` (an app records HardMute, or someone else
    /// records the source directly).
    pub physical_running: bool,
    pub sources: Vec<SourceInfo>,
    pub listeners: Vec<ListenerInfo>,
    pub last_error: Option<String>,
}

/// The user's state and the page it is applied to; one lock, so the beat thread re-applying
/// the state to a new page and a mute command cannot interleave.
pub(crate) struct CtlState {
    pub wanted_muted: bool,
    pub source: ChangeSource,
    pub fade_ms: Option<u32>,
    pub page: Option<Arc<page::MappedPage>>,
}

pub(crate) struct Shared {
    pub state: Mutex<CtlState>,
    pub connected: AtomicBool,
}

impl Shared {
    /// Applies the wanted state to the page, if any. Returns the page to wait on.
    pub fn apply(&self, st: &CtlState) -> Option<Arc<page::MappedPage>> {
        let page = st.page.clone()?;
        if let Some(ms) = st.fade_ms {
            page.shm().set_fade_ms(ms);
        }
        let _ = page
            .shm()
            .control
            .set_muted(st.wanted_muted, st.source, Authority::Owner);
        Some(page)
    }
}

pub struct Controller {
    shared: Arc<Shared>,
    commands: pipewire::channel::Sender<session::Command>,
    status: Arc<Mutex<Status>>,
    thread: Option<JoinHandle<()>>,
    _lock: lock::InstanceLock,
}

const START_TIMEOUT: Duration = Duration::from_secs(10);
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// Waits until no gate cycle can still use the previous state (a cycle lasts a few ms; 2000 x
/// 0.5 ms is a generous bound).
fn wait_effective(page: &page::MappedPage) -> bool {
    page.shm()
        .control
        .wait_until_effective(|| std::thread::sleep(Duration::from_micros(500)), 2000)
}

impl Controller {
    /// Connects to PipeWire and starts controlling the gate. An unknown `config.source` does
    /// not fail: HardMute stays muted and `status().last_error` lists the available sources.
    pub fn start(config: Config) -> Result<Controller, Error> {
        let lock = lock::InstanceLock::acquire(config.lock_dir.clone())?;
        let shared = Arc::new(Shared {
            state: Mutex::new(CtlState {
                wanted_muted: config.initially_muted,
                source: ChangeSource::Startup,
                fade_ms: config.fade_ms,
                page: None,
            }),
            connected: AtomicBool::new(false),
        });
        let status = Arc::new(Mutex::new(Status::default()));
        let (tx, rx) = pipewire::channel::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let settings = session::Settings {
            source: config.source,
            release_on_mute: config.release_on_mute,
            locator: config.locator.or_else(page::locator_path),
        };
        let thread = {
            let (shared, status) = (shared.clone(), status.clone());
            std::thread::Builder::new()
                .name("hardmute-backend-linux".into())
                .spawn(move || session::run(settings, shared, status, rx, ready_tx))
                .map_err(|e| Error::Connect(e.to_string()))?
        };
        let mut c = Controller {
            shared,
            commands: tx,
            status,
            thread: Some(thread),
            _lock: lock,
        };
        match ready_rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(())) => Ok(c),
            Ok(Err(e)) => {
                c.stop();
                Err(e)
            }
            Err(_) => {
                c.stop();
                Err(Error::Timeout("PipeWire start-up"))
            }
        }
    }

    /// The state the gate obeys: the page's when it is mapped, else the one that will be
    /// applied to it (the gate delivers zeros until then).
    pub fn is_muted(&self) -> bool {
        let st = self.shared.state.lock();
        match &st.page {
            Some(p) => p.shm().control.is_muted(),
            None => st.wanted_muted,
        }
    }

    /// The gate's counters (None until its page is found).
    pub fn snapshot(&self) -> Option<ControlSnapshot> {
        let st = self.shared.state.lock();
        st.page.as_ref().map(|p| p.shm().control.snapshot())
    }

    /// The level of what the gate delivered (peak, RMS, windows so far): exactly 0 while muted.
    pub fn level(&self) -> Option<(f32, f32, u64)> {
        let st = self.shared.state.lock();
        st.page.as_ref().map(|p| p.shm().level())
    }

    /// Sets hard mute. With the gate's page mapped, returns only once no gate cycle can still
    /// use the old state (invariant 2). Without it the gate delivers zeros anyway; the state is
    /// applied when the page appears, before the lease lets anything through.
    pub fn set_hard_mute(&self, muted: bool, source: ChangeSource) -> Result<(), Error> {
        if !muted && !self.shared.connected.load(Ordering::SeqCst) {
            return Err(Error::Stopped);
        }
        let page = {
            let mut st = self.shared.state.lock();
            st.wanted_muted = muted;
            st.source = source;
            self.shared.apply(&st)
        };
        if let Some(page) = page {
            if !wait_effective(&page) {
                return Err(Error::NotEffective);
            }
        }
        let _ = self.commands.send(session::Command::MuteChanged);
        Ok(())
    }

    /// Chooses the physical source by `node.name` (`None` = follow the default). An unknown
    /// name is refused with the list of sources; the current source and the mute state stay.
    pub fn select_source(&self, name: Option<String>) -> Result<(), Error> {
        let (tx, rx) = mpsc::channel();
        self.commands
            .send(session::Command::SelectSource(name, tx))
            .map_err(|_| Error::Stopped)?;
        rx.recv_timeout(REPLY_TIMEOUT).map_err(|_| Error::Stopped)?
    }

    /// Release the physical source while muted (its capture links removed).
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

    /// Leaves cleanly: mutes the gate (and waits for it), gives the lease up, stops the thread.
    /// The capture links stay (they linger); the gate delivers zeros with nobody beating.
    pub fn stop(&mut self) {
        let page = {
            let mut st = self.shared.state.lock();
            st.wanted_muted = true;
            st.source = ChangeSource::FailSafe;
            self.shared.apply(&st)
        };
        if let Some(page) = page {
            let _ = wait_effective(&page);
            page.shm().release();
        }
        let _ = self.commands.send(session::Command::Quit);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.shared.state.lock().page = None;
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.stop();
    }
}
