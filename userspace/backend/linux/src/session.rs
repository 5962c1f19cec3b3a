//! The PipeWire thread: one main loop that watches the registry, finds the gate's nodes, keeps
//! the links into the gate as they should be, and every `BEAT_MS` finds/maps the gate's page,
//! applies the user's state to it and beats the lease. Everything here runs on that one
//! thread; the control thread talks to it through a pipewire channel and reads the published
//! `Status`.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::rc::{Rc, Weak};
use std::sync::{mpsc, Arc};

use parking_lot::Mutex;
use pipewire as pw;
use pw::client::{Client, ClientListener};
use pw::link::Link;
use pw::metadata::{Metadata, MetadataListener};
use pw::node::{Node, NodeListener};
use pw::proxy::ProxyT;
use pw::types::ObjectType;

use crate::graph::{
    parse_default_name, AppIdentity, Direction, Graph, LinkEntry, NodeEntry, PlannedLink,
    PortEntry, HARDMUTE_NODE_NAME, MARKER_KEY,
};
use crate::{page, Error, Shared, Status};
use hardmute_core::control::{Authority, ChangeSource};
use hardmute_linux_gate::abi::{monotonic_ns, BEAT_MS};

/// How often a failing link is retried before it is left alone (and logged).
const MAX_LINK_ATTEMPTS: u32 = 5;

pub(crate) enum Command {
    /// The mute state changed (already effective on the realtime path): fix the links.
    MuteChanged,
    SelectSource(Option<String>, mpsc::Sender<Result<(), Error>>),
    SetReleaseOnMute(bool),
    Quit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the registry's initial globals.
    FirstSync,
    /// Waiting for the info of the nodes bound during the first sync (to read markers).
    SecondSync,
    Running,
}

// Listener before proxy: a hook must be removed while its proxy still exists.
struct BoundNode {
    _listener: NodeListener,
    _proxy: Node,
}
struct BoundClient {
    _listener: ClientListener,
    _proxy: Client,
}
struct BoundMetadata {
    _listener: MetadataListener,
    _proxy: Metadata,
}

pub(crate) struct Settings {
    pub source: Option<String>,
    pub release_on_mute: bool,
    /// The gate's locator (`$XDG_RUNTIME_DIR/hardmute/gate`).
    pub locator: Option<std::path::PathBuf>,
}

struct Session {
    settings: Settings,
    shared: Arc<Shared>,
    /// The last reason the page could not be mapped (logged once per reason).
    page_error: Option<String>,
    core: pw::core::CoreRc,
    registry: pw::registry::RegistryRc,
    mainloop: pw::main_loop::MainLoopWeak,
    me: Weak<RefCell<Session>>,
    phase: Phase,
    sync_seq: Option<pw::spa::utils::result::AsyncSeq>,
    graph: Graph,
    nodes: HashMap<u32, BoundNode>,
    clients: HashMap<u32, BoundClient>,
    /// Every `default` metadata, by id. Normally there is one (the session manager's); a
    /// second one (a config that also creates it) makes WirePlumber 0.4 ignore stream targets
    /// (userspace/backend/linux/README.md), so it is warned about.
    metadata: HashMap<u32, BoundMetadata>,
    /// Streams that asked for hardmute_mic but capture another source, already warned about.
    misrouted: HashSet<u32>,
    /// Nodes named or marked like the gate's but made by an app, already warned about.
    impostors: HashSet<u32>,
    /// Links we asked for, by (output port, input port). They linger (`object.linger`): they
    /// stay when our connection goes, so a crash of the daemon changes nothing in the graph.
    links: HashMap<(u32, u32), Link>,
    /// Failed link attempts per (output port, input port): retried a few times, then left.
    link_failures: HashMap<(u32, u32), u32>,
    ready: Option<mpsc::Sender<Result<(), Error>>>,
    status: Arc<Mutex<Status>>,
    last_error: Option<String>,
}

/// Runs the PipeWire thread until `Command::Quit` or until the server goes away.
pub(crate) fn run(
    settings: Settings,
    shared: Arc<Shared>,
    status: Arc<Mutex<Status>>,
    commands: pw::channel::Receiver<Command>,
    ready: mpsc::Sender<Result<(), Error>>,
) {
    pw::init();
    let connect = || -> Result<_, pw::Error> {
        let mainloop = pw::main_loop::MainLoopRc::new(None)?;
        // client-rt.conf: the data loop (our process callback) gets realtime priority, directly
        // or through RTKit, as PipeWire's own audio clients do.
        let context = pw::context::ContextRc::new(
            &mainloop,
            Some(pw::properties::properties! { "config.name" => "client-rt.conf" }),
        )?;
        let core = context.connect_rc(None)?;
        let registry = core.get_registry_rc()?;
        Ok((mainloop, context, core, registry))
    };
    let (mainloop, _context, core, registry) = match connect() {
        Ok(v) => v,
        Err(e) => {
            let _ = ready.send(Err(Error::Connect(e.to_string())));
            return;
        }
    };
    // Who the server is, by the kernel's word: only its own nodes are the gate.
    let server_pid = match hardmute_linux_gate::server::server_pid() {
        Ok(pid) => {
            log::info!("PipeWire server is pid {pid}: only its own nodes count as the gate");
            Some(pid)
        }
        Err(e) => {
            log::warn!(
                "cannot tell which process the PipeWire server is ({e}): the gate's nodes are \
                 recognised by their marker alone, which an app could imitate"
            );
            None
        }
    };

    let session = Rc::new_cyclic(|me| {
        RefCell::new(Session {
            settings,
            shared: shared.clone(),
            page_error: None,
            core: core.clone(),
            registry: registry.clone(),
            mainloop: mainloop.downgrade(),
            me: me.clone(),
            phase: Phase::FirstSync,
            sync_seq: None,
            graph: Graph {
                server_pid,
                ..Graph::default()
            },
            nodes: HashMap::new(),
            clients: HashMap::new(),
            metadata: HashMap::new(),
            misrouted: HashSet::new(),
            impostors: HashSet::new(),
            links: HashMap::new(),
            link_failures: HashMap::new(),
            ready: Some(ready),
            status,
            last_error: None,
        })
    });

    let _registry_listener = {
        let on_global = Rc::downgrade(&session);
        let on_remove = Rc::downgrade(&session);
        registry
            .add_listener_local()
            .global(move |global| {
                if let Some(s) = on_global.upgrade() {
                    s.borrow_mut().on_global(global);
                }
            })
            .global_remove(move |id| {
                if let Some(s) = on_remove.upgrade() {
                    s.borrow_mut().on_global_remove(id);
                }
            })
            .register()
    };
    let _core_listener = {
        let on_done = Rc::downgrade(&session);
        let on_error = Rc::downgrade(&session);
        core.add_listener_local()
            .done(move |id, seq| {
                if id != pw::core::PW_ID_CORE {
                    return;
                }
                if let Some(s) = on_done.upgrade() {
                    s.borrow_mut().on_done(seq);
                }
            })
            .error(move |id, _seq, res, message| {
                if let Some(s) = on_error.upgrade() {
                    s.borrow_mut().on_error(id, res, message);
                }
            })
            .register()
    };
    let _commands = {
        let on_command = Rc::downgrade(&session);
        commands.attach(mainloop.loop_(), move |command| {
            if let Some(s) = on_command.upgrade() {
                s.borrow_mut().on_command(command);
            }
        })
    };

    // The lease: beat (and find/map the page) every BEAT_MS on this thread. If this thread
    // stalls, the beats stop and the gate closes by itself.
    let beat = {
        let on_beat = Rc::downgrade(&session);
        mainloop.loop_().add_timer(move |_| {
            if let Some(s) = on_beat.upgrade() {
                s.borrow_mut().on_beat();
            }
        })
    };
    let _ = beat.update_timer(
        Some(std::time::Duration::from_millis(1)),
        Some(std::time::Duration::from_millis(BEAT_MS)),
    );
    shared
        .connected
        .store(true, std::sync::atomic::Ordering::SeqCst);

    {
        let mut s = session.borrow_mut();
        match core.sync(0) {
            Ok(seq) => s.sync_seq = Some(seq),
            Err(e) => s.fail_start(Error::Connect(format!("core sync: {e}"))),
        }
    }
    mainloop.run();

    // Tear down: the link proxies (the links themselves linger), everything bound. The page of
    // a server we are no longer connected to is dropped: a restarted server makes a new one.
    shared
        .connected
        .store(false, std::sync::atomic::Ordering::SeqCst);
    shared.state.lock().page = None;
    let mut s = session.borrow_mut();
    s.links.clear();
    s.nodes.clear();
    s.clients.clear();
    s.metadata.clear();
    s.status.lock().connected = false;
}

/// Whether the process behind a client's verified pid is pipewire-pulse (its streams then
/// carry their PulseAudio client's verified pid). Its name alone is the process's own say
/// (`prctl(PR_SET_NAME)`); the program it runs is the kernel's: PipeWire's own binary
/// (`pipewire-pulse` is a link to `pipewire`).
fn is_pulse_server(pid: u32) -> bool {
    let named = std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .is_ok_and(|c| c.trim_end() == "pipewire-pulse");
    named && hardmute_linux_gate::server::runs_pipewire(pid) == Some(true)
}

fn prop(dict: Option<&pw::spa::utils::dict::DictRef>, key: &str) -> Option<String> {
    dict.and_then(|d| d.get(key)).map(str::to_owned)
}

fn prop_u32(dict: Option<&pw::spa::utils::dict::DictRef>, key: &str) -> Option<u32> {
    dict.and_then(|d| d.get(key)).and_then(|v| v.parse().ok())
}

impl Session {
    fn fail_start(&mut self, err: Error) {
        log::error!("hardmute-backend-linux: {err}");
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(Err(err));
        }
        if let Some(ml) = self.mainloop.upgrade() {
            ml.quit();
        }
    }

    fn on_done(&mut self, seq: pw::spa::utils::result::AsyncSeq) {
        if self.sync_seq != Some(seq) {
            return;
        }
        match self.phase {
            Phase::FirstSync => {
                self.phase = Phase::SecondSync;
                match self.core.sync(0) {
                    Ok(seq) => self.sync_seq = Some(seq),
                    Err(e) => self.fail_start(Error::Connect(format!("core sync: {e}"))),
                }
            }
            Phase::SecondSync => {
                self.phase = Phase::Running;
                self.sync_seq = None;
                if let Some(wanted) = self.settings.source.clone() {
                    if let Err(unknown) = self.graph.check_source_name(&wanted) {
                        self.fail_safe_mute(&unknown.to_string());
                    }
                }
                self.reconcile();
            }
            Phase::Running => {}
        }
    }

    fn on_error(&mut self, id: u32, res: i32, message: &str) {
        // A link of ours that failed (a port reconfigured by the session manager under us, a
        // format that did not negotiate): forget it so the next reconcile makes it again.
        let failed = self
            .links
            .iter()
            .find(|(_, l)| l.upcast_ref().id() == id)
            .map(|(k, _)| *k);
        if let Some(key) = failed {
            self.links.remove(&key);
            let n = self.link_failures.entry(key).or_insert(0);
            *n += 1;
            log::info!("link {key:?} failed ({message}), attempt {n}");
            self.reconcile();
            return;
        }
        if res == -libc::ENOENT {
            // A global that went away before our bind or link reached the server: the
            // registry's remove event follows and reconcile works from there.
            log::debug!("pipewire: object {id}: {message}");
        } else {
            log::warn!("pipewire error on object {id}: {res} {message}");
        }
        if id == pw::core::PW_ID_CORE && res == -libc::EPIPE {
            // The server went away. The daemon notices through `Status::connected`.
            self.status.lock().connected = false;
            self.shared
                .connected
                .store(false, std::sync::atomic::Ordering::SeqCst);
            self.fail_start(Error::Connect(format!(
                "pipewire connection lost: {message}"
            )));
            if let Some(ml) = self.mainloop.upgrade() {
                ml.quit();
            }
        }
    }

    /// Mute because we cannot honour the user's choice (unknown source): HardMute stays up.
    fn fail_safe_mute(&mut self, why: &str) {
        log::error!("hardmute-backend-linux: {why}; staying muted");
        self.last_error = Some(why.to_owned());
        let mut st = self.shared.state.lock();
        st.wanted_muted = true;
        st.source = ChangeSource::FailSafe;
        if let Some(p) = &st.page {
            let _ = p
                .shm()
                .control
                .set_muted(true, ChangeSource::FailSafe, Authority::Other);
        }
    }

    /// Every BEAT_MS: find or re-find the gate's page, keep the user's state on it, beat.
    fn on_beat(&mut self) {
        let Some(locator) = self.settings.locator.clone() else {
            self.note_page_error("XDG_RUNTIME_DIR is not set: cannot find the gate".into());
            return;
        };
        let current = self.shared.state.lock().page.clone();
        let target = page::read_locator(&locator);
        let stale = match (&current, &target) {
            (None, _) => true,
            (Some(p), Ok(t)) => &p.target != t,
            (Some(_), Err(_)) => false, // keep a page whose locator was removed: still valid
        };
        if stale {
            // The locator is a file anyone of this user can write: the page must be the one
            // the server we are connected to made.
            let opened = page::open(&locator).and_then(|p| match self.graph.server_pid {
                Some(server) if server != p.server_pid => Err(format!(
                    "{}: made by pid {}, but the PipeWire server is pid {server}",
                    p.target, p.server_pid
                )),
                _ => Ok(p),
            });
            match opened {
                Ok(p) => {
                    log::info!("gate found: {} (PipeWire pid {})", p.target, p.server_pid);
                    self.page_error = None;
                    let mut st = self.shared.state.lock();
                    st.page = Some(Arc::new(p));
                    // A new page is muted: apply the user's state before the first beat opens
                    // the lease.
                    self.shared.apply(&st);
                }
                Err(e) if current.is_none() => self.note_page_error(e),
                Err(e) => log::warn!("gate locator changed but cannot be opened: {e}"),
            }
        }
        let page =
            {
                let mut st = self.shared.state.lock();
                let page = st.page.clone();
                if let Some(p) = &page {
                    let muted = p.shm().control.is_muted();
                    if muted != st.wanted_muted {
                        log::warn!(
                        "the gate's state was changed outside the controller (muted={muted}); {}",
                        if muted { "keeping the mute" } else { "muting again" }
                    );
                        if muted {
                            st.wanted_muted = true;
                            st.source = ChangeSource::OtherClient;
                        } else {
                            self.shared.apply(&st);
                        }
                    }
                }
                page
            };
        if let Some(p) = page {
            p.shm().beat(monotonic_ns(), std::process::id());
        }
        self.publish();
    }

    fn note_page_error(&mut self, e: String) {
        if self.page_error.as_deref() != Some(e.as_str()) {
            log::info!("gate page not mapped yet: {e}");
        }
        self.page_error = Some(e);
        self.publish();
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::MuteChanged => self.reconcile(),
            Command::SelectSource(name, reply) => {
                // An unknown name changes nothing: the current source and mute state stay.
                let result = match &name {
                    Some(wanted) => self
                        .graph
                        .check_source_name(wanted)
                        .map(|_| ())
                        .map_err(Error::UnknownSource),
                    None => Ok(()),
                };
                if result.is_ok() {
                    self.settings.source = name;
                    self.last_error = None;
                }
                self.reconcile();
                let _ = reply.send(result);
            }
            Command::SetReleaseOnMute(release) => {
                self.settings.release_on_mute = release;
                self.reconcile();
            }
            Command::Quit => {
                if let Some(ml) = self.mainloop.upgrade() {
                    ml.quit();
                }
            }
        }
    }

    fn on_global(&mut self, global: &pw::registry::GlobalObject<&pw::spa::utils::dict::DictRef>) {
        let props = global.props;
        match global.type_ {
            ObjectType::Node => {
                let entry = NodeEntry {
                    id: global.id,
                    name: prop(props, "node.name").unwrap_or_default(),
                    description: prop(props, "node.description").unwrap_or_default(),
                    media_class: prop(props, "media.class").unwrap_or_default(),
                    client_id: prop_u32(props, "client.id"),
                    serial: prop(props, "object.serial"),
                    ..Default::default()
                };
                self.graph.nodes.insert(global.id, entry);
                match self.registry.bind::<Node, _>(global) {
                    Ok(proxy) => {
                        let me = self.me.clone();
                        let id = global.id;
                        let listener = proxy
                            .add_listener_local()
                            .info(move |info| {
                                // Props are only meaningful when flagged as changed (a state
                                // change carries none): never read a marker from those.
                                let props =
                                    info.change_mask().contains(pw::node::NodeChangeMask::PROPS);
                                let running = matches!(info.state(), pw::node::NodeState::Running);
                                if let Some(s) = me.upgrade() {
                                    s.borrow_mut().on_node_info(
                                        id,
                                        running,
                                        info.props().filter(|_| props),
                                    );
                                }
                            })
                            .register();
                        self.nodes.insert(
                            global.id,
                            BoundNode {
                                _listener: listener,
                                _proxy: proxy,
                            },
                        );
                    }
                    Err(e) => log::warn!("cannot bind node {}: {e}", global.id),
                }
            }
            ObjectType::Port => {
                let (Some(node_id), Some(direction)) =
                    (prop_u32(props, "node.id"), prop(props, "port.direction"))
                else {
                    return;
                };
                let direction = if direction == "in" {
                    Direction::In
                } else {
                    Direction::Out
                };
                self.graph.ports.insert(
                    global.id,
                    PortEntry {
                        id: global.id,
                        node_id,
                        direction,
                        name: prop(props, "port.name").unwrap_or_default(),
                        channel: prop(props, "audio.channel"),
                        monitor: prop(props, "port.monitor").as_deref() == Some("true"),
                    },
                );
            }
            ObjectType::Link => {
                let get = |k| prop_u32(props, k);
                if let (Some(out_node), Some(out_port), Some(in_node), Some(in_port)) = (
                    get("link.output.node"),
                    get("link.output.port"),
                    get("link.input.node"),
                    get("link.input.port"),
                ) {
                    self.graph.links.insert(
                        global.id,
                        LinkEntry {
                            id: global.id,
                            out_node,
                            out_port,
                            in_node,
                            in_port,
                        },
                    );
                }
            }
            ObjectType::Client => match self.registry.bind::<Client, _>(global) {
                Ok(proxy) => {
                    let me = self.me.clone();
                    let id = global.id;
                    let listener = proxy
                        .add_listener_local()
                        .info(move |info| {
                            if !info
                                .change_mask()
                                .contains(pw::client::ClientChangeMask::PROPS)
                            {
                                return;
                            }
                            if let Some(s) = me.upgrade() {
                                let app = AppIdentity::from_lookup(|k| {
                                    info.props().and_then(|p| p.get(k))
                                });
                                let pulse = app.sec_pid.is_some_and(is_pulse_server);
                                let mut s = s.borrow_mut();
                                if pulse {
                                    s.graph.pulse_servers.insert(id);
                                }
                                s.graph.clients.insert(id, app);
                                // The gate's nodes are known as the server's only now if
                                // their info came first.
                                s.reconcile();
                            }
                        })
                        .register();
                    self.clients.insert(
                        global.id,
                        BoundClient {
                            _listener: listener,
                            _proxy: proxy,
                        },
                    );
                }
                Err(e) => log::warn!("cannot bind client {}: {e}", global.id),
            },
            ObjectType::Metadata => {
                if prop(props, "metadata.name").as_deref() != Some("default") {
                    return;
                }
                match self.registry.bind::<Metadata, _>(global) {
                    Ok(proxy) => {
                        let me = self.me.clone();
                        let listener = proxy
                            .add_listener_local()
                            .property(move |subject, key, _type, value| {
                                if subject != pw::core::PW_ID_CORE {
                                    return 0;
                                }
                                if key.is_none() || key == Some("default.audio.source") {
                                    if let Some(s) = me.upgrade() {
                                        let mut s = s.borrow_mut();
                                        s.graph.default_source = value.and_then(parse_default_name);
                                        s.reconcile();
                                    }
                                }
                                0
                            })
                            .register();
                        if !self.metadata.is_empty() {
                            log::warn!(
                                "a second \"default\" metadata ({}) besides {:?}: clients and \
                                 the session manager may each use a different one (stream \
                                 targets can be ignored)",
                                global.id,
                                self.metadata.keys().collect::<Vec<_>>()
                            );
                        }
                        self.metadata.insert(
                            global.id,
                            BoundMetadata {
                                _listener: listener,
                                _proxy: proxy,
                            },
                        );
                    }
                    Err(e) => log::warn!("cannot bind metadata {}: {e}", global.id),
                }
            }
            _ => return,
        }
        self.reconcile();
    }

    fn on_node_info(
        &mut self,
        id: u32,
        running: bool,
        props: Option<&pw::spa::utils::dict::DictRef>,
    ) {
        let Some(entry) = self.graph.nodes.get_mut(&id) else {
            return;
        };
        entry.info_received = true;
        entry.running = running;
        if let Some(props) = props {
            entry.marker = props.get(MARKER_KEY).map(str::to_owned);
            entry.app = AppIdentity::from_lookup(|k| props.get(k));
            if let Some(v) = props.get("node.description") {
                entry.description = v.to_owned();
            }
            if let Some(v) = props.get("media.class") {
                entry.media_class = v.to_owned();
            }
            if let Some(v) = props.get("client.id").and_then(|v| v.parse().ok()) {
                entry.client_id = Some(v);
            }
            entry.requested_target = props
                .get("target.object")
                .or_else(|| props.get("node.target"))
                .map(str::to_owned);
        }
        self.reconcile();
    }

    fn on_global_remove(&mut self, id: u32) {
        self.misrouted.remove(&id);
        self.impostors.remove(&id);
        if let Some(gone) = self.graph.links.get(&id) {
            // One of ours destroyed by someone else: forget the proxy so it is made again.
            self.links.remove(&(gone.out_port, gone.in_port));
        }
        self.graph.remove_global(id);
        self.nodes.remove(&id);
        self.clients.remove(&id);
        if self.metadata.remove(&id).is_some() && self.metadata.is_empty() {
            self.graph.default_source = None;
        }
        // Links whose ports vanished are gone on the server; forget their proxies.
        let ports = &self.graph.ports;
        self.links
            .retain(|(o, i), _| ports.contains_key(o) && ports.contains_key(i));
        self.reconcile();
    }

    /// Makes the graph match what it should be. Idempotent; called after every change.
    fn reconcile(&mut self) {
        if self.phase != Phase::Running {
            return;
        }
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(Ok(()));
        }
        let sources = self.graph.hardmute_nodes();
        let captures = self.graph.capture_nodes();
        if sources.len() > 1 || captures.len() > 1 {
            log::warn!(
                "more than one HardMute gate in the graph (sources {sources:?}, inputs \
                 {captures:?}): is the drop-in loaded twice? Using the first"
            );
        }
        if let Some(&hm) = sources.first() {
            self.warn_misrouted(hm);
        }
        self.warn_impostors();
        let released = self.settings.release_on_mute && self.shared.state.lock().wanted_muted;
        let plan = self
            .graph
            .plan_links(self.settings.source.as_deref(), released);
        if plan.capture.is_none() {
            self.publish();
            return;
        }
        let wanted: BTreeSet<(u32, u32)> = plan
            .wanted
            .iter()
            .map(|w| (w.out_port, w.in_port))
            .collect();
        for l in plan.unwanted {
            if self.links.remove(&(l.out_port, l.in_port)).is_none() {
                log::info!(
                    "removing link {} into the gate that HardMute did not make",
                    l.id
                );
            }
            let _ = self.registry.destroy_global(l.id);
        }
        self.links.retain(|k, _| wanted.contains(k));
        for PlannedLink {
            out_node,
            out_port,
            in_node,
            in_port,
        } in plan.wanted
        {
            // A link that already exists (ours from before a restart: they linger) is kept.
            if self.links.contains_key(&(out_port, in_port))
                || self.graph.link_exists(out_port, in_port)
            {
                continue;
            }
            if self
                .link_failures
                .get(&(out_port, in_port))
                .is_some_and(|&n| n >= MAX_LINK_ATTEMPTS)
            {
                continue;
            }
            let props = pw::properties::properties! {
                "link.output.node" => out_node.to_string(),
                "link.output.port" => out_port.to_string(),
                "link.input.node" => in_node.to_string(),
                "link.input.port" => in_port.to_string(),
                // Outlives this connection: a crash of hardmuted leaves the graph as it was,
                // and the gate closes through the lease.
                "object.linger" => "true",
                // Passive, as the gate's input is (`node.passive`): this link alone does not
                // keep the physical source running; an app recording HardMute does.
                "link.passive" => "true",
            };
            match self.core.create_object::<Link>("link-factory", &props) {
                Ok(link) => {
                    self.links.insert((out_port, in_port), link);
                }
                Err(e) => log::warn!("cannot link {out_port} -> {in_port}: {e}"),
            }
        }
        self.publish();
    }

    /// A stream that asked for hardmute_mic (by name, serial or id) but that the session
    /// manager linked from another source captures the physical mic ungated. That happened in
    /// our e2e rig with two `default` metadata objects (see userspace/backend/linux/README.md);
    /// it is logged once per stream here, and `listeners` reports the stream as a physical
    /// capture.
    fn warn_misrouted(&mut self, hm: u32) {
        for (stream, from) in self.graph.misrouted_streams(hm) {
            if self.misrouted.insert(stream) {
                let name = self.graph.nodes.get(&stream).map(|n| n.name.as_str());
                log::warn!(
                    "stream {stream} ({}) asked for {HARDMUTE_NODE_NAME} but the session \
                     manager linked it from {from:?}: it records that source, not HardMute",
                    name.unwrap_or("?")
                );
            }
        }
    }

    fn warn_impostors(&mut self) {
        for n in self.graph.impostors() {
            if self.impostors.insert(n.id) {
                let maker = n.client_id.and_then(|c| self.graph.clients.get(&c));
                log::warn!(
                    "node {} ({:?}) is named or marked like HardMute's gate but was made by \
                     client {:?} (pid {:?}), not by the PipeWire server: ignored as a gate, \
                     listed as a listener when it records",
                    n.id,
                    n.name,
                    n.client_id,
                    maker.and_then(|m| m.sec_pid)
                );
            }
        }
    }

    fn publish(&mut self) {
        let hm = self.graph.hardmute_nodes().first().copied();
        let capture = self.graph.capture_nodes().first().copied();
        let source = self.graph.choose_source(self.settings.source.as_deref());
        let capture_links = self
            .graph
            .links
            .values()
            .filter(|l| Some(l.in_node) == capture && Some(l.out_node) == source)
            .count();
        let page = self
            .shared
            .state
            .lock()
            .page
            .as_ref()
            .map(|p| p.target.clone());
        let mut st = self.status.lock();
        st.connected = true;
        st.hardmute_node = hm;
        st.capture_node = capture;
        st.page = page;
        st.page_error = self.page_error.clone();
        st.source_wanted = self.settings.source.clone();
        let linked = source
            .filter(|_| capture_links > 0)
            .and_then(|s| self.graph.nodes.get(&s));
        st.source_linked = linked.map(|n| n.name.clone());
        st.physical_running = linked.is_some_and(|n| n.running);
        st.capture_links = capture_links;
        st.sources = self.graph.source_list();
        st.listeners = self.graph.listeners();
        st.last_error = self.last_error.clone();
    }
}
