//! The PipeWire thread: one main loop that watches the registry, finds or creates the
//! lingering `hardmute_mic` node, runs the gate filter and keeps the links as they should be.
//! Everything here runs on that one thread; the control thread talks to it through a
//! pipewire channel and reads the published `Status`.

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

use crate::filter::FeederFilter;
use crate::graph::{
    map_channels, parse_default_name, AppIdentity, Direction, Graph, LinkEntry, NodeEntry,
    PortEntry, HARDMUTE_NODE_DESCRIPTION, HARDMUTE_NODE_NAME, MARKER_KEY, MARKER_SOURCE,
};
use crate::hm_core::control::{Authority, ChangeSource, ControlBlock};
use crate::{Error, Status};

/// How often a failing link is retried before it is left alone (and logged).
const MAX_LINK_ATTEMPTS: u32 = 5;

/// The graph rate used for the fade length and for a newly created node.
const DEFAULT_RATE: u32 = 48_000;

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
    pub fade_ms: u32,
    /// Where every gate filter this session builds publishes the delivered level.
    pub level: Arc<crate::rt::LevelTap>,
}

struct Session {
    settings: Settings,
    ctl: Arc<ControlBlock>,
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
    /// (driver/linux/README.md), so it is warned about.
    metadata: HashMap<u32, BoundMetadata>,
    /// Streams that asked for hardmute_mic but capture another source, already warned about.
    misrouted: HashSet<u32>,
    /// Proxy of the hardmute_mic we created; kept so the creation is not cancelled. The node
    /// lingers after our connection is gone.
    created_node: Option<Node>,
    create_requested: bool,
    filter: Option<FeederFilter>,
    /// Links we made, by (output port, input port). Dropping a proxy destroys its link.
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
    ctl: Arc<ControlBlock>,
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

    let session = Rc::new_cyclic(|me| {
        RefCell::new(Session {
            settings,
            ctl,
            core: core.clone(),
            registry: registry.clone(),
            mainloop: mainloop.downgrade(),
            me: me.clone(),
            phase: Phase::FirstSync,
            sync_seq: None,
            graph: Graph::default(),
            nodes: HashMap::new(),
            clients: HashMap::new(),
            metadata: HashMap::new(),
            misrouted: HashSet::new(),
            created_node: None,
            create_requested: false,
            filter: None,
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

    {
        let mut s = session.borrow_mut();
        match core.sync(0) {
            Ok(seq) => s.sync_seq = Some(seq),
            Err(e) => s.fail_start(Error::Connect(format!("core sync: {e}"))),
        }
    }
    mainloop.run();

    // Tear down in order: filter (leaves the graph; our links go with our connection), then
    // our link proxies, then everything bound. hardmute_mic lingers: apps keep recording zeros.
    let mut s = session.borrow_mut();
    s.filter = None;
    s.links.clear();
    s.nodes.clear();
    s.clients.clear();
    s.metadata.clear();
    s.created_node = None;
    s.status.lock().connected = false;
}

fn prop(dict: Option<&pw::spa::utils::dict::DictRef>, key: &str) -> Option<String> {
    dict.and_then(|d| d.get(key)).map(str::to_owned)
}

fn prop_u32(dict: Option<&pw::spa::utils::dict::DictRef>, key: &str) -> Option<u32> {
    dict.and_then(|d| d.get(key)).and_then(|v| v.parse().ok())
}

impl Session {
    fn fail_start(&mut self, err: Error) {
        log::error!("hardmute-pipewire: {err}");
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
        log::error!("hardmute-pipewire: {why}; staying muted");
        self.last_error = Some(why.to_owned());
        let _ = self
            .ctl
            .set_muted(true, ChangeSource::FailSafe, Authority::Other);
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
                                if let Some(s) = me.upgrade() {
                                    s.borrow_mut()
                                        .on_node_info(id, info.props().filter(|_| props));
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
                                s.borrow_mut().graph.clients.insert(id, app);
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

    fn on_node_info(&mut self, id: u32, props: Option<&pw::spa::utils::dict::DictRef>) {
        let Some(entry) = self.graph.nodes.get_mut(&id) else {
            return;
        };
        entry.info_received = true;
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
        let hardmute = self.graph.hardmute_nodes();
        if hardmute.len() > 1 {
            log::warn!(
                "{} nodes carry the HardMute marker ({hardmute:?}); using the first",
                hardmute.len()
            );
        }
        let Some(&hm) = hardmute.first() else {
            log::debug!(
                "reconcile: no hardmute node (create_requested={})",
                self.create_requested
            );
            if !self.create_requested {
                self.create_hardmute_node();
            }
            self.publish();
            return;
        };
        self.create_requested = false;
        self.warn_misrouted(hm);

        let hm_inputs: Vec<(u32, String)> = self
            .graph
            .node_ports(hm, Direction::In)
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id, p.channel.clone().unwrap_or_else(|| format!("AUX{i}"))))
            .collect();
        if hm_inputs.is_empty() {
            self.publish();
            return;
        }
        let channels: Vec<String> = hm_inputs.iter().map(|(_, c)| c.clone()).collect();
        if self
            .filter
            .as_ref()
            .is_some_and(|f| f.channels() != channels.as_slice())
        {
            log::info!("hardmute_mic channels changed to {channels:?}; rebuilding the gate filter");
            self.filter = None;
            self.graph.feeder_node = None;
        }
        if self.filter.is_none() {
            // SAFETY: the core is live and belongs to this thread's loop; the filter is
            // dropped before the core (end of `run`).
            match unsafe {
                FeederFilter::new(
                    self.core.as_raw_ptr(),
                    &channels,
                    DEFAULT_RATE,
                    self.settings.fade_ms,
                    self.ctl.clone(),
                    self.settings.level.clone(),
                )
            } {
                Ok(f) => self.filter = Some(f),
                Err(e) => {
                    self.fail_start(Error::Filter(e.0));
                    return;
                }
            }
        }
        self.graph.feeder_node = self.filter.as_ref().and_then(FeederFilter::node_id);
        let Some(feeder) = self.graph.feeder_node else {
            self.publish();
            return;
        };
        let feeder_in: Vec<u32> = self
            .graph
            .node_ports(feeder, Direction::In)
            .iter()
            .map(|p| p.id)
            .collect();
        let feeder_out: Vec<(u32, Option<String>)> = self
            .graph
            .node_ports(feeder, Direction::Out)
            .iter()
            .map(|p| (p.id, p.channel.clone()))
            .collect();

        // What should exist: filter -> hardmute_mic always; source -> filter unless released.
        let mut desired: Vec<(u32, u32, u32, u32)> = Vec::new(); // out_node, out_port, in_node, in_port
        for (i, (hm_port, channel)) in hm_inputs.iter().enumerate() {
            let by_name = feeder_out
                .iter()
                .find(|(_, c)| c.as_deref() == Some(channel.as_str()));
            if let Some((port, _)) = by_name.or_else(|| feeder_out.get(i)) {
                desired.push((feeder, *port, hm, *hm_port));
            }
        }
        let released = self.settings.release_on_mute && self.ctl.is_muted();
        let source = self.graph.choose_source(self.settings.source.as_deref());
        if let (Some(src), false) = (source, released) {
            if feeder_in.len() == channels.len() {
                for (src_port, idx) in map_channels(&self.graph.source_ports(src), &channels) {
                    if let Some(&in_port) = feeder_in.get(idx) {
                        desired.push((src, src_port, feeder, in_port));
                    }
                }
            }
        }
        let wanted: BTreeSet<(u32, u32)> = desired.iter().map(|d| (d.1, d.3)).collect();

        // Drop ours that should not exist (a released mic, a previous source).
        let stale: Vec<(u32, u32)> = self
            .links
            .keys()
            .filter(|k| !wanted.contains(k))
            .copied()
            .collect();
        for key in stale {
            self.links.remove(&key);
            if let Some(l) = self
                .graph
                .links
                .values()
                .find(|l| (l.out_port, l.in_port) == key)
            {
                let _ = self.registry.destroy_global(l.id);
            }
        }
        // Anyone else's link into our filter (a session manager, a user, our own node) goes:
        // the filter only ever captures from the chosen physical source.
        let foreign: Vec<u32> = self
            .graph
            .links
            .values()
            .filter(|l| l.in_node == feeder && !wanted.contains(&(l.out_port, l.in_port)))
            .map(|l| l.id)
            .collect();
        log::debug!(
            "reconcile: hm={hm} feeder={feeder} desired={desired:?} ours={:?}",
            self.links.keys()
        );
        for id in foreign {
            log::info!("removing link {id} into the gate filter that HardMute did not make");
            let _ = self.registry.destroy_global(id);
        }
        for (out_node, out_port, in_node, in_port) in desired {
            if self.links.contains_key(&(out_port, in_port)) {
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
                "object.linger" => "false",
            };
            match self.core.create_object::<Link>("link-factory", &props) {
                Ok(link) => {
                    self.links.insert((out_port, in_port), link);
                }
                Err(e) => log::warn!("cannot link {out_port} -> {in_port}: {e}"),
            }
        }
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(Ok(()));
        }
        self.publish();
    }

    /// A stream that asked for hardmute_mic (by name, serial or id) but that the session
    /// manager linked from another source captures the physical mic ungated. That happened in
    /// our e2e rig with two `default` metadata objects (see driver/linux/README.md); it is
    /// logged once per stream here, and `listeners` reports the stream as a physical capture.
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

    fn create_hardmute_node(&mut self) {
        let positions: Vec<String> = self
            .graph
            .choose_source(self.settings.source.as_deref())
            .map(|src| {
                self.graph
                    .source_ports(src)
                    .iter()
                    .filter_map(|p| p.channel.clone())
                    .collect()
            })
            .unwrap_or_default();
        let positions = if positions.is_empty() {
            vec!["MONO".to_string()]
        } else {
            positions
        };
        let mut props = pw::properties::properties! {
            "factory.name" => "support.null-audio-sink",
            "node.name" => HARDMUTE_NODE_NAME,
            "node.description" => HARDMUTE_NODE_DESCRIPTION,
            "media.class" => "Audio/Source/Virtual",
            "audio.position" => format!("[ {} ]", positions.join(" ")),
            "audio.rate" => DEFAULT_RATE.to_string(),
            "object.linger" => "true",
            "monitor.channel-volumes" => "false",
            MARKER_KEY => MARKER_SOURCE,
        };
        // A session manager configures the node's ports itself (and, with WirePlumber 0.4,
        // can stall on a node that configured itself first: apps then never get linked).
        // Without one, nobody would: the adapter must configure itself or it has no ports.
        if !self.graph.session_manager_present() {
            props.insert(
                "adapter.auto-port-config",
                "{ mode = dsp monitor = true control = false position = preserve }",
            );
        }
        match self.core.create_object::<Node>("adapter", &props) {
            Ok(node) => {
                log::info!("created {HARDMUTE_NODE_NAME} ({positions:?})");
                self.created_node = Some(node);
                self.create_requested = true;
            }
            Err(e) => self.fail_start(Error::Connect(format!(
                "cannot create {HARDMUTE_NODE_NAME}: {e}"
            ))),
        }
    }

    fn publish(&mut self) {
        let hm = self.graph.hardmute_nodes().first().copied();
        let source = self.graph.choose_source(self.settings.source.as_deref());
        let feeder = self.graph.feeder_node;
        let capture_links = self
            .graph
            .links
            .values()
            .filter(|l| Some(l.in_node) == feeder && Some(l.out_node) == source)
            .count();
        let feed_links = self
            .graph
            .links
            .values()
            .filter(|l| Some(l.out_node) == feeder && Some(l.in_node) == hm)
            .count();
        let mut st = self.status.lock();
        st.connected = true;
        st.hardmute_node = hm;
        st.feeder_node = feeder;
        st.source_wanted = self.settings.source.clone();
        st.source_linked = source
            .filter(|_| capture_links > 0)
            .and_then(|s| self.graph.nodes.get(&s))
            .map(|n| n.name.clone());
        st.capture_links = capture_links;
        st.feed_links = feed_links;
        st.sources = self.graph.source_list();
        st.listeners = self.graph.listeners();
        st.channels = self
            .filter
            .as_ref()
            .map(|f| f.channels().to_vec())
            .unwrap_or_default();
        st.last_error = self.last_error.clone();
    }
}
