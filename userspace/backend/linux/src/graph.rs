//! A plain-data picture of the PipeWire graph, filled from the registry, and the decisions
//! made from it: which node is HardMute's, which physical source to feed from, which links
//! should exist, who is listening. No PipeWire calls here, so all of it is unit-tested.

use std::collections::BTreeMap;

pub use hardmute_linux_gate::abi::{
    CAPTURE_NODE_NAME, MARKER_CAPTURE, MARKER_KEY, MARKER_SOURCE,
    SOURCE_NODE_NAME as HARDMUTE_NODE_NAME,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    In,
    Out,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppIdentity {
    pub app_name: Option<String>,
    /// The pid to report: see [`Graph::listeners`] for which one is trusted.
    pub pid: Option<u32>,
    pub binary: Option<String>,
    /// `application.process.id`: what the client says about itself.
    pub declared_pid: Option<u32>,
    /// `pipewire.sec.pid`: on a client, set by the server from the socket's peer credentials
    /// (a client cannot change it); on a pipewire-pulse stream, set by pipewire-pulse from its
    /// own client's socket.
    pub sec_pid: Option<u32>,
}

impl AppIdentity {
    pub fn from_lookup<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Self {
        let declared_pid = get("application.process.id").and_then(|p| p.parse().ok());
        AppIdentity {
            app_name: get("application.name").map(str::to_owned),
            pid: declared_pid,
            binary: get("application.process.binary").map(str::to_owned),
            declared_pid,
            sec_pid: get("pipewire.sec.pid").and_then(|p| p.parse().ok()),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct NodeEntry {
    pub id: u32,
    pub name: String,
    pub description: String,
    pub media_class: String,
    pub client_id: Option<u32>,
    /// The node's info (full properties) has arrived; only then do we know its marker.
    pub info_received: bool,
    pub marker: Option<String>,
    pub app: AppIdentity,
    /// The node's state is `running` (from its info).
    pub running: bool,
    /// `object.serial` (global props): what `target.object` names a node by.
    pub serial: Option<String>,
    /// The target a stream asked for in its own props: `target.object`, else `node.target`
    /// (a node name, an object serial or a node id).
    pub requested_target: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PortEntry {
    pub id: u32,
    pub node_id: u32,
    pub direction: Direction,
    pub name: String,
    pub channel: Option<String>,
    pub monitor: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkEntry {
    pub id: u32,
    pub out_node: u32,
    pub out_port: u32,
    pub in_node: u32,
    pub in_port: u32,
}

/// A source the user may pick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInfo {
    pub id: u32,
    pub name: String,
    pub description: String,
    pub media_class: String,
    pub is_default: bool,
}

/// Which device a listener captures from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Captures {
    /// The HardMute Microphone (gated).
    HardMute,
    /// A physical source directly (not gated: the app bypasses HardMute).
    Physical { source_name: String },
}

/// A client capturing from HardMute or from a physical source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerInfo {
    pub node_id: u32,
    pub node_name: String,
    pub captures: Captures,
    pub app: AppIdentity,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownSource {
    pub wanted: String,
    pub available: Vec<String>,
}

impl std::fmt::Display for UnknownSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "no audio source named {:?}; available sources: ",
            self.wanted
        )?;
        if self.available.is_empty() {
            write!(f, "(none)")
        } else {
            write!(f, "{}", self.available.join(", "))
        }
    }
}

#[derive(Debug, Default)]
pub struct Graph {
    pub nodes: BTreeMap<u32, NodeEntry>,
    pub ports: BTreeMap<u32, PortEntry>,
    pub links: BTreeMap<u32, LinkEntry>,
    pub clients: BTreeMap<u32, AppIdentity>,
    /// Clients that are PulseAudio servers (pipewire-pulse): their streams carry the pulse
    /// client's socket-verified pid in `pipewire.sec.pid`.
    pub pulse_servers: std::collections::BTreeSet<u32>,
    /// `node.name` from the `default` metadata's `default.audio.source`.
    pub default_source: Option<String>,
    /// The PipeWire server's pid by its socket's peer credentials ([`hardmute_linux_gate::server`]);
    /// `None` when they name another process (a socket-activated PipeWire: systemd made the
    /// socket): then the marker alone decides, as a same-user app could imitate.
    pub server_pid: Option<u32>,
}

impl Graph {
    pub fn remove_global(&mut self, id: u32) {
        self.nodes.remove(&id);
        self.ports.remove(&id);
        self.links.remove(&id);
        self.clients.remove(&id);
        self.pulse_servers.remove(&id);
    }

    /// Made by the PipeWire server itself: the node's `client.id` (set by the server) names a
    /// client whose `pipewire.sec.pid` (set by the server from the socket) is the server's own
    /// pid. An app's node can copy our names and marker, never this.
    pub fn made_by_server(&self, node: &NodeEntry) -> bool {
        let Some(server) = self.server_pid else {
            return true;
        };
        let maker = node
            .client_id
            .and_then(|c| self.clients.get(&c))
            .and_then(|c| c.sec_pid);
        maker == Some(server)
    }

    /// The gate's nodes with `marker` (read from their info, never from the global props), made
    /// by the server.
    fn gate_nodes(&self, marker: &str) -> Vec<u32> {
        self.nodes
            .values()
            .filter(|n| n.info_received && n.marker.as_deref() == Some(marker))
            .filter(|n| self.made_by_server(n))
            .map(|n| n.id)
            .collect()
    }

    /// HardMute Microphone: the gate's output side.
    pub fn hardmute_nodes(&self) -> Vec<u32> {
        self.gate_nodes(MARKER_SOURCE)
    }

    /// The gate's input nodes (filter-chain's capture side): where the physical mic is linked.
    pub fn capture_nodes(&self) -> Vec<u32> {
        self.gate_nodes(MARKER_CAPTURE)
    }

    /// Nodes that claim our marker or names but are not the server's: an app's imitation.
    pub fn impostors(&self) -> Vec<&NodeEntry> {
        self.nodes
            .values()
            .filter(|n| n.info_received && self.is_ours(n) && !self.made_by_server(n))
            .collect()
    }

    /// True for every node we must never capture from: anything with our marker or our
    /// names, whether or not its info has arrived yet (or who made it: an imitation is not a
    /// source either). Who counts as HardMute's is [`Self::made_by_server`].
    pub fn is_ours(&self, node: &NodeEntry) -> bool {
        node.marker.is_some() || node.name == HARDMUTE_NODE_NAME || node.name == CAPTURE_NODE_NAME
    }

    /// Audio sources we may feed from: `Audio/Source*`, info known, not ours.
    pub fn physical_sources(&self) -> Vec<&NodeEntry> {
        self.nodes
            .values()
            .filter(|n| {
                n.info_received && n.media_class.starts_with("Audio/Source") && !self.is_ours(n)
            })
            .collect()
    }

    pub fn source_list(&self) -> Vec<SourceInfo> {
        self.physical_sources()
            .into_iter()
            .map(|n| SourceInfo {
                id: n.id,
                name: n.name.clone(),
                description: n.description.clone(),
                media_class: n.media_class.clone(),
                is_default: self.default_source.as_deref() == Some(n.name.as_str()),
            })
            .collect()
    }

    /// Checks a user-given source name against the graph.
    pub fn check_source_name(&self, wanted: &str) -> Result<u32, UnknownSource> {
        let sources = self.physical_sources();
        sources
            .iter()
            .find(|n| n.name == wanted)
            .map(|n| n.id)
            .ok_or_else(|| UnknownSource {
                wanted: wanted.to_owned(),
                available: sources.iter().map(|n| n.name.clone()).collect(),
            })
    }

    /// The source to feed from now: the named one if given (None while it is absent), else the
    /// default source if it is eligible, else the first real `Audio/Source`, else the first
    /// virtual one.
    pub fn choose_source(&self, wanted: Option<&str>) -> Option<u32> {
        let sources = self.physical_sources();
        if let Some(wanted) = wanted {
            return sources.iter().find(|n| n.name == wanted).map(|n| n.id);
        }
        if let Some(default) = &self.default_source {
            if let Some(n) = sources.iter().find(|n| &n.name == default) {
                return Some(n.id);
            }
        }
        sources
            .iter()
            .find(|n| n.media_class == "Audio/Source")
            .or_else(|| sources.first())
            .map(|n| n.id)
    }

    /// Audio ports of `node` in `direction`, by id (creation order = channel order).
    pub fn node_ports(&self, node: u32, direction: Direction) -> Vec<&PortEntry> {
        self.ports
            .values()
            .filter(|p| p.node_id == node && p.direction == direction)
            .collect()
    }

    /// Whether a session manager (WirePlumber, pipewire-media-session) is connected.
    pub fn session_manager_present(&self) -> bool {
        self.clients.values().any(|c| {
            c.app_name
                .as_deref()
                .is_some_and(|n| n.starts_with("WirePlumber") || n == "pipewire-media-session")
        })
    }

    /// Capture ports of a source: its non-monitor outputs, or its monitor outputs when it has
    /// only those (a null-audio-sink used as a source, like the CI fake mic).
    pub fn source_ports(&self, node: u32) -> Vec<&PortEntry> {
        let out = self.node_ports(node, Direction::Out);
        let plain: Vec<&PortEntry> = out.iter().copied().filter(|p| !p.monitor).collect();
        if plain.is_empty() {
            out
        } else {
            plain
        }
    }

    pub fn link_exists(&self, out_port: u32, in_port: u32) -> bool {
        self.links
            .values()
            .any(|l| l.out_port == out_port && l.in_port == in_port)
    }

    /// Capture streams that asked for HardMute in their own props (`target.object` or
    /// `node.target` naming `hardmute_mic` by name, serial or id). The session manager should
    /// link them to `hm`, but WirePlumber 0.4 can send them to the default source instead.
    pub fn streams_asking_for(&self, hm: u32) -> Vec<u32> {
        let Some(ours) = self.nodes.get(&hm) else {
            return Vec::new();
        };
        let id = hm.to_string();
        self.nodes
            .values()
            .filter(|n| n.media_class.starts_with("Stream/Input/Audio") && !self.is_ours(n))
            .filter(|n| match n.requested_target.as_deref() {
                Some(t) => t == HARDMUTE_NODE_NAME || t == id || Some(t) == ours.serial.as_deref(),
                None => false,
            })
            .map(|n| n.id)
            .collect()
    }

    /// Streams that asked for HardMute but are linked from another node, with that node's name.
    pub fn misrouted_streams(&self, hm: u32) -> Vec<(u32, String)> {
        let mut out: Vec<(u32, String)> = Vec::new();
        for stream in self.streams_asking_for(hm) {
            for l in self.links.values() {
                if l.in_node == stream && l.out_node != hm && !out.iter().any(|o| o.0 == stream) {
                    let from = self.nodes.get(&l.out_node).map(|n| n.name.clone());
                    out.push((stream, from.unwrap_or_else(|| l.out_node.to_string())));
                }
            }
        }
        out
    }

    /// Everyone capturing from HardMute or from a physical source, except the gate's own input.
    /// Only the server's own gate nodes count as HardMute: a reader of a node that merely calls
    /// itself `hardmute_mic` is listed as capturing that node, and an app's node named or
    /// marked like the gate's input is listed like any other reader.
    ///
    /// The pid reported is the one the server verified: the reading node's client's
    /// `pipewire.sec.pid` (peer credentials of its socket); for a stream of a PulseAudio client
    /// (its PipeWire client is pipewire-pulse) the `pipewire.sec.pid` pipewire-pulse put on the
    /// stream from that client's socket. Only when neither exists is the self-declared
    /// `application.process.id` used.
    pub fn listeners(&self) -> Vec<ListenerInfo> {
        let hardmute: Vec<u32> = self.hardmute_nodes();
        let gate_input: Vec<u32> = self.capture_nodes();
        let mut out: Vec<ListenerInfo> = Vec::new();
        for link in self.links.values() {
            let captures = if hardmute.contains(&link.out_node) {
                Captures::HardMute
            } else {
                match self.nodes.get(&link.out_node) {
                    Some(n)
                        if n.media_class.starts_with("Audio/Source") && !self.made_by_server(n) =>
                    {
                        Captures::Physical {
                            source_name: n.name.clone(),
                        }
                    }
                    _ => continue,
                }
            };
            let Some(reader) = self.nodes.get(&link.in_node) else {
                continue;
            };
            if gate_input.contains(&reader.id) {
                continue;
            }
            if out
                .iter()
                .any(|l| l.node_id == reader.id && l.captures == captures)
            {
                continue;
            }
            // The node's own props first, field by field; the client's where the node has none
            // (pw-record's node names the app but not its pid).
            let mut app = reader.app.clone();
            let via_pulse = reader
                .client_id
                .is_some_and(|c| self.pulse_servers.contains(&c));
            if let Some(client) = reader.client_id.and_then(|c| self.clients.get(&c)) {
                app.app_name = app.app_name.or_else(|| client.app_name.clone());
                app.binary = app.binary.or_else(|| client.binary.clone());
                app.pid = if via_pulse {
                    reader.app.sec_pid.or(reader.app.declared_pid)
                } else {
                    client
                        .sec_pid
                        .or(reader.app.declared_pid)
                        .or(client.declared_pid)
                };
            }
            out.push(ListenerInfo {
                node_id: reader.id,
                node_name: reader.name.clone(),
                captures,
                app,
            });
        }
        out
    }
}

/// Which source port feeds each of the filter's input channels. `dst_channels` are the
/// filter's channel positions in order. Same position first; a mono source feeds every
/// channel; a mono destination takes the first source channel (summing would add up to
/// +6 dB on correlated channels); otherwise channels are paired by index, wrapping.
pub fn map_channels(src: &[&PortEntry], dst_channels: &[String]) -> Vec<(u32, usize)> {
    let mut pairs = Vec::new();
    if src.is_empty() {
        return pairs;
    }
    for (i, pos) in dst_channels.iter().enumerate() {
        let same = src
            .iter()
            .find(|p| p.channel.as_deref() == Some(pos.as_str()));
        let port = match same {
            Some(p) => p,
            None if src.len() == 1 => &src[0],
            None if dst_channels.len() == 1 => &src[0],
            None => &src[i % src.len()],
        };
        pairs.push((port.id, i));
    }
    pairs
}

/// One link from a port of the physical source into a port of the gate's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PlannedLink {
    pub out_node: u32,
    pub out_port: u32,
    pub in_node: u32,
    pub in_port: u32,
}

/// What the links into the gate's input should be: decided from the graph alone, applied by the
/// session (which only creates and destroys what this says).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkPlan {
    /// The gate's input node; `None` when the gate is not in the graph (nothing to do).
    pub capture: Option<u32>,
    /// The chosen physical source; `None` when there is none to link or it is released.
    pub source: Option<u32>,
    /// The links that should exist: the source's channels onto the gate's input ports.
    pub wanted: Vec<PlannedLink>,
    /// Existing links into the gate's input that should go: a released mic, a previous source,
    /// and anyone else's (a patchbay, a session manager, a second source linked in). Such a link
    /// would be muted with everything else, but while live only the chosen mic is HardMute.
    pub unwanted: Vec<LinkEntry>,
}

impl Graph {
    /// The links into the gate's input for the source the user chose (`None`: the default), or
    /// none while `released` (muted with release-on-mute: the physical mic may sleep).
    pub fn plan_links(&self, chosen: Option<&str>, released: bool) -> LinkPlan {
        let Some(&capture) = self.capture_nodes().first() else {
            return LinkPlan::default();
        };
        let capture_in: Vec<(u32, String)> = self
            .node_ports(capture, Direction::In)
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id, p.channel.clone().unwrap_or_else(|| format!("AUX{i}"))))
            .collect();
        let channels: Vec<String> = capture_in.iter().map(|(_, c)| c.clone()).collect();
        let source = if released {
            None
        } else {
            self.choose_source(chosen)
        };
        let mut wanted = Vec::new();
        if let Some(src) = source {
            for (out_port, idx) in map_channels(&self.source_ports(src), &channels) {
                if let Some(&(in_port, _)) = capture_in.get(idx) {
                    wanted.push(PlannedLink {
                        out_node: src,
                        out_port,
                        in_node: capture,
                        in_port,
                    });
                }
            }
        }
        let unwanted = self
            .links
            .values()
            .filter(|l| {
                l.in_node == capture
                    && !wanted
                        .iter()
                        .any(|w| w.out_port == l.out_port && w.in_port == l.in_port)
            })
            .copied()
            .collect();
        LinkPlan {
            capture: Some(capture),
            source,
            wanted,
            unwanted,
        }
    }
}

/// Parses the value of `default.audio.source` (`{ "name": "alsa_input..." }`).
pub fn parse_default_name(value: &str) -> Option<String> {
    let key = value.find("\"name\"")?;
    let rest = &value[key + 6..];
    let colon = rest.find(':')?;
    let rest = rest[colon + 1..].trim_start();
    let rest = rest.strip_prefix('"')?;
    let mut name = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(name),
            '\\' => name.push(chars.next()?),
            c => name.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The PipeWire server's pid and its own client (the one its filter-chain makes the gate's
    /// nodes with).
    const SERVER_PID: u32 = 900;
    const SERVER_CLIENT: u32 = 19;

    /// A node; a marked one is the server's (see [`impostor`] for an app's imitation).
    fn node(id: u32, name: &str, class: &str, marker: Option<&str>) -> NodeEntry {
        NodeEntry {
            id,
            name: name.into(),
            description: name.into(),
            media_class: class.into(),
            info_received: true,
            client_id: marker.map(|_| SERVER_CLIENT),
            marker: marker.map(Into::into),
            ..Default::default()
        }
    }
    /// A node that copies the gate's name and marker, made by the app's client `client`.
    fn impostor(id: u32, name: &str, class: &str, marker: &str, client: u32) -> NodeEntry {
        NodeEntry {
            client_id: Some(client),
            ..node(id, name, class, Some(marker))
        }
    }
    /// A link between node `o`'s and node `i`'s first ports (the tests look at nodes only).
    fn link(id: u32, o: u32, i: u32) -> LinkEntry {
        LinkEntry {
            id,
            out_node: o,
            out_port: 0,
            in_node: i,
            in_port: 0,
        }
    }
    fn port(id: u32, node_id: u32, direction: Direction, ch: &str, monitor: bool) -> PortEntry {
        PortEntry {
            id,
            node_id,
            direction,
            name: format!("p{id}"),
            channel: Some(ch.into()),
            monitor,
        }
    }
    fn graph(nodes: Vec<NodeEntry>) -> Graph {
        let mut g = Graph {
            server_pid: Some(SERVER_PID),
            ..Graph::default()
        };
        g.clients.insert(
            SERVER_CLIENT,
            AppIdentity::from_lookup(|k| match k {
                "application.name" => Some("pipewire"),
                "pipewire.sec.pid" => Some("900"),
                _ => None,
            }),
        );
        for n in nodes {
            g.nodes.insert(n.id, n);
        }
        g
    }

    #[test]
    fn never_chooses_our_own_node_even_when_it_is_the_default() {
        let mut g = graph(vec![
            node(
                30,
                HARDMUTE_NODE_NAME,
                "Audio/Source/Virtual",
                Some(MARKER_SOURCE),
            ),
            node(40, "mic", "Audio/Source", None),
        ]);
        g.default_source = Some(HARDMUTE_NODE_NAME.into());
        assert_eq!(g.choose_source(None), Some(40));
        assert_eq!(g.choose_source(Some(HARDMUTE_NODE_NAME)), None);
        assert!(g.check_source_name(HARDMUTE_NODE_NAME).is_err());
    }

    #[test]
    fn a_marked_node_under_another_name_is_still_refused() {
        let g = graph(vec![node(
            31,
            "renamed",
            "Audio/Source",
            Some(MARKER_SOURCE),
        )]);
        assert_eq!(g.choose_source(None), None);
    }

    #[test]
    fn a_node_named_like_ours_is_refused_before_its_info_arrives() {
        let mut n = node(32, HARDMUTE_NODE_NAME, "Audio/Source/Virtual", None);
        n.info_received = false;
        let g = graph(vec![n]);
        assert!(g.is_ours(&g.nodes[&32]));
        assert!(
            g.hardmute_nodes().is_empty(),
            "the marker is only trusted from info"
        );
    }

    #[test]
    fn default_source_is_preferred_then_real_over_virtual() {
        let mut g = graph(vec![
            node(5, "virt", "Audio/Source/Virtual", None),
            node(6, "real", "Audio/Source", None),
            node(7, "other", "Audio/Source", None),
        ]);
        assert_eq!(g.choose_source(None), Some(6));
        g.default_source = Some("other".into());
        assert_eq!(g.choose_source(None), Some(7));
        g.default_source = Some("gone".into());
        assert_eq!(g.choose_source(None), Some(6));
        g.nodes.remove(&6);
        g.nodes.remove(&7);
        assert_eq!(g.choose_source(None), Some(5));
    }

    #[test]
    fn unknown_name_lists_the_available_sources() {
        let g = graph(vec![
            node(6, "a", "Audio/Source", None),
            node(7, "b", "Audio/Source/Virtual", None),
        ]);
        let err = g.check_source_name("nope").unwrap_err();
        assert_eq!(err.available, vec!["a".to_string(), "b".to_string()]);
        let text = err.to_string();
        assert!(text.contains("\"nope\"") && text.contains("a, b"), "{text}");
        assert_eq!(g.check_source_name("b"), Ok(7));
    }

    #[test]
    fn source_ports_prefer_plain_outputs_over_monitors() {
        let mut g = graph(vec![node(6, "a", "Audio/Source", None)]);
        g.ports.insert(10, port(10, 6, Direction::Out, "FL", true));
        g.ports.insert(11, port(11, 6, Direction::Out, "FL", false));
        g.ports.insert(12, port(12, 6, Direction::In, "FL", false));
        assert_eq!(
            g.source_ports(6).iter().map(|p| p.id).collect::<Vec<_>>(),
            vec![11]
        );
        g.ports.remove(&11);
        assert_eq!(
            g.source_ports(6).iter().map(|p| p.id).collect::<Vec<_>>(),
            vec![10]
        );
    }

    #[test]
    fn channel_mapping() {
        let fl = port(1, 6, Direction::Out, "FL", false);
        let fr = port(2, 6, Direction::Out, "FR", false);
        let mono = port(3, 7, Direction::Out, "MONO", false);
        let stereo = vec!["FL".to_string(), "FR".to_string()];
        let mono_dst = vec!["MONO".to_string()];
        assert_eq!(map_channels(&[&fr, &fl], &stereo), vec![(1, 0), (2, 1)]);
        assert_eq!(map_channels(&[&mono], &stereo), vec![(3, 0), (3, 1)]);
        assert_eq!(map_channels(&[&fl, &fr], &mono_dst), vec![(1, 0)]);
        assert_eq!(map_channels(&[], &stereo), vec![]);
    }

    #[test]
    fn streams_asking_for_hardmute_by_name_serial_or_id_and_the_misrouted_ones() {
        let mut g = graph(vec![
            node(
                30,
                HARDMUTE_NODE_NAME,
                "Audio/Source/Virtual",
                Some(MARKER_SOURCE),
            ),
            node(40, "mic", "Audio/Source", None),
            node(
                50,
                CAPTURE_NODE_NAME,
                "Stream/Input/Audio",
                Some(MARKER_CAPTURE),
            ),
            node(60, "by-name", "Stream/Input/Audio", None),
            node(61, "by-serial", "Stream/Input/Audio", None),
            node(62, "by-id", "Stream/Input/Audio", None),
            node(63, "wants-mic", "Stream/Input/Audio", None),
            node(64, "no-target", "Stream/Input/Audio", None),
            node(65, "player", "Stream/Output/Audio", None),
        ]);
        g.nodes.get_mut(&30).unwrap().serial = Some("77".into());
        let want = |g: &mut Graph, id: u32, t: &str| {
            g.nodes.get_mut(&id).unwrap().requested_target = Some(t.into());
        };
        want(&mut g, 60, HARDMUTE_NODE_NAME);
        want(&mut g, 61, "77");
        want(&mut g, 62, "30");
        want(&mut g, 63, "mic");
        want(&mut g, 65, HARDMUTE_NODE_NAME); // a playback stream cannot record us
        want(&mut g, 50, HARDMUTE_NODE_NAME); // our own filter never counts
        assert_eq!(g.streams_asking_for(30), vec![60, 61, 62]);
        assert!(g.streams_asking_for(99).is_empty(), "unknown node");
        g.links.insert(1, link(1, 30, 60)); // right
        g.links.insert(2, link(2, 40, 61)); // asked for us, got the mic
        g.links.insert(3, link(3, 40, 61)); // second channel: reported once
        g.links.insert(4, link(4, 40, 63)); // asked for the mic, got it: fine
        g.links.insert(5, link(5, 40, 64)); // no target: the default, not ours to judge
        assert_eq!(g.misrouted_streams(30), vec![(61, "mic".to_string())]);
    }

    #[test]
    fn only_the_servers_own_nodes_are_the_gate() {
        // An app (client 70, sec pid 4000, calling itself "pipewire") copies both nodes: names,
        // media classes and markers.
        let mut g = graph(vec![
            node(
                30,
                HARDMUTE_NODE_NAME,
                "Audio/Source/Virtual",
                Some(MARKER_SOURCE),
            ),
            node(
                50,
                CAPTURE_NODE_NAME,
                "Stream/Input/Audio",
                Some(MARKER_CAPTURE),
            ),
            node(40, "mic", "Audio/Source", None),
            impostor(
                20,
                HARDMUTE_NODE_NAME,
                "Audio/Source/Virtual",
                MARKER_SOURCE,
                70,
            ),
            impostor(
                21,
                CAPTURE_NODE_NAME,
                "Stream/Input/Audio",
                MARKER_CAPTURE,
                70,
            ),
        ]);
        g.clients.insert(
            70,
            AppIdentity::from_lookup(|k| match k {
                "application.name" => Some("pipewire"),
                "application.process.id" => Some("900"),
                "pipewire.sec.pid" => Some("4000"),
                _ => None,
            }),
        );
        assert_eq!(g.hardmute_nodes(), [30]);
        assert_eq!(g.capture_nodes(), [50]);
        let impostors: Vec<u32> = g.impostors().iter().map(|n| n.id).collect();
        assert_eq!(impostors, [20, 21]);
        // The mic goes into the server's gate input only, however the imitation sorts.
        g.ports
            .insert(100, port(100, 40, Direction::Out, "MONO", false));
        g.ports
            .insert(101, port(101, 50, Direction::In, "MONO", false));
        g.ports
            .insert(102, port(102, 21, Direction::In, "MONO", false));
        let plan = g.plan_links(None, false);
        assert_eq!(plan.capture, Some(50));
        assert!(!plan.wanted.is_empty());
        assert!(plan.wanted.iter().all(|w| w.in_node == 50), "{plan:?}");
        // A copy's readers are listed: the copy's input as a capture of the physical mic, a
        // reader of the fake HardMute Microphone as capturing that node, not HardMute.
        g.links.insert(1, link(1, 40, 50));
        g.links.insert(2, link(2, 40, 21));
        g.nodes
            .insert(61, node(61, "rec", "Stream/Input/Audio", None));
        g.links.insert(3, link(3, 20, 61));
        let ls = g.listeners();
        let seen: Vec<(u32, Captures)> =
            ls.iter().map(|l| (l.node_id, l.captures.clone())).collect();
        assert_eq!(
            seen,
            [
                (
                    21,
                    Captures::Physical {
                        source_name: "mic".into()
                    }
                ),
                (
                    61,
                    Captures::Physical {
                        source_name: HARDMUTE_NODE_NAME.into()
                    }
                ),
            ]
        );
        assert_eq!(ls[0].app.pid, Some(4000), "the server-verified pid");
        // Without the server's pid (no PipeWire process found behind the socket) the marker
        // decides: both copies count.
        g.server_pid = None;
        assert_eq!(g.hardmute_nodes(), [20, 30]);
        assert!(g.impostors().is_empty());
    }

    #[test]
    fn listeners_cover_hardmute_and_physical_but_not_our_filter() {
        let mut g = graph(vec![
            node(
                30,
                HARDMUTE_NODE_NAME,
                "Audio/Source/Virtual",
                Some(MARKER_SOURCE),
            ),
            node(40, "mic", "Audio/Source", None),
            node(
                50,
                CAPTURE_NODE_NAME,
                "Stream/Input/Audio",
                Some(MARKER_CAPTURE),
            ),
            node(60, "zoom-in", "Stream/Input/Audio", None),
            node(61, "spy", "Stream/Input/Audio", None),
            node(62, "player", "Stream/Output/Audio", None),
            node(63, "pulse-rec", "Stream/Input/Audio", None),
        ]);
        // A native client that claims another pid: the server's peer credentials win.
        g.nodes.get_mut(&60).unwrap().app = AppIdentity::from_lookup(|k| match k {
            "application.name" => Some("Zoom"),
            "application.process.id" => Some("1"),
            "application.process.binary" => Some("zoom"),
            _ => None,
        });
        g.nodes.get_mut(&60).unwrap().client_id = Some(8);
        g.clients.insert(
            8,
            AppIdentity::from_lookup(|k| match k {
                "application.process.id" => Some("1"),
                "pipewire.sec.pid" => Some("42"),
                _ => None,
            }),
        );
        g.nodes.get_mut(&61).unwrap().client_id = Some(9);
        g.clients.insert(
            9,
            AppIdentity {
                app_name: Some("Spy".into()),
                pid: Some(7),
                binary: Some("spy".into()),
                declared_pid: Some(7),
                sec_pid: None,
            },
        );
        // A PulseAudio client's stream: its client is pipewire-pulse (pid 500); the stream's
        // own sec pid (set by pipewire-pulse) is reported.
        g.nodes.get_mut(&63).unwrap().client_id = Some(10);
        g.nodes.get_mut(&63).unwrap().app = AppIdentity::from_lookup(|k| match k {
            "pipewire.sec.pid" => Some("77"),
            "application.process.id" => Some("78"),
            _ => None,
        });
        g.clients.insert(
            10,
            AppIdentity::from_lookup(|k| (k == "pipewire.sec.pid").then_some("500")),
        );
        g.pulse_servers.insert(10);
        g.links.insert(1, link(1, 40, 50)); // mic -> the gate's input: not a listener
        g.links.insert(3, link(3, 30, 60)); // hardmute -> zoom
        g.links.insert(4, link(4, 30, 60)); // second channel: deduplicated
        g.links.insert(5, link(5, 40, 61)); // spy on the physical mic
        g.links.insert(6, link(6, 62, 60)); // a player output: not a source
        g.links.insert(7, link(7, 30, 63)); // hardmute -> a PulseAudio client
        let ls = g.listeners();
        assert_eq!(ls.len(), 3, "{ls:?}");
        assert_eq!(ls[2].app.pid, Some(77), "pipewire-pulse's verified pid");
        assert_eq!(ls[0].captures, Captures::HardMute);
        assert_eq!(ls[0].app.pid, Some(42));
        assert_eq!(
            ls[1].captures,
            Captures::Physical {
                source_name: "mic".into()
            }
        );
        assert_eq!(
            ls[1].app.app_name.as_deref(),
            Some("Spy"),
            "falls back to the client's props"
        );
    }

    #[test]
    fn recognises_a_session_manager() {
        let mut g = Graph::default();
        g.clients.insert(
            3,
            AppIdentity {
                app_name: Some("pw-record".into()),
                ..Default::default()
            },
        );
        assert!(!g.session_manager_present());
        g.clients.insert(
            4,
            AppIdentity {
                app_name: Some("WirePlumber".into()),
                ..Default::default()
            },
        );
        assert!(g.session_manager_present());
    }

    #[test]
    fn parses_default_source_metadata() {
        assert_eq!(
            parse_default_name(r#"{ "name": "alsa_input.usb" }"#).as_deref(),
            Some("alsa_input.usb")
        );
        assert_eq!(
            parse_default_name(r#"{"name":"a\"b"}"#).as_deref(),
            Some("a\"b")
        );
        assert_eq!(parse_default_name(r#"{ "other": 1 }"#), None);
        assert_eq!(parse_default_name(r#"{ "name": "unterminated"#), None);
    }

    /// The link plan as a table: graph -> links wanted and links to remove.
    #[test]
    fn the_link_plan_for_each_situation() {
        const CAPTURE: u32 = 50;
        const CAP_IN: u32 = 51;
        const MIC: u32 = 40;
        const MIC_OUT: u32 = 41;
        const OTHER: u32 = 60;
        const OTHER_OUT: u32 = 61;
        let base = || {
            let mut g = graph(vec![
                node(
                    CAPTURE,
                    "hardmute_capture",
                    "Stream/Input/Audio",
                    Some(MARKER_CAPTURE),
                ),
                node(30, HARDMUTE_NODE_NAME, "Audio/Source", Some(MARKER_SOURCE)),
                node(MIC, "mic", "Audio/Source", None),
                node(OTHER, "usb-mic", "Audio/Source", None),
            ]);
            for p in [
                port(CAP_IN, CAPTURE, Direction::In, "MONO", false),
                port(MIC_OUT, MIC, Direction::Out, "MONO", false),
                port(OTHER_OUT, OTHER, Direction::Out, "MONO", false),
            ] {
                g.ports.insert(p.id, p);
            }
            g.default_source = Some("mic".into());
            g
        };
        let link = |id, out_node, out_port| LinkEntry {
            id,
            out_node,
            out_port,
            in_node: CAPTURE,
            in_port: CAP_IN,
        };
        let want = |out_node, out_port| PlannedLink {
            out_node,
            out_port,
            in_node: CAPTURE,
            in_port: CAP_IN,
        };
        struct Case {
            what: &'static str,
            chosen: Option<&'static str>,
            released: bool,
            links: Vec<LinkEntry>,
            source: Option<u32>,
            wanted: Vec<PlannedLink>,
            unwanted: Vec<u32>,
        }
        let cases = [
            Case {
                what: "default source, nothing linked yet",
                chosen: None,
                released: false,
                links: vec![],
                source: Some(MIC),
                wanted: vec![want(MIC, MIC_OUT)],
                unwanted: vec![],
            },
            Case {
                what: "our link already there is kept",
                chosen: None,
                released: false,
                links: vec![link(90, MIC, MIC_OUT)],
                source: Some(MIC),
                wanted: vec![want(MIC, MIC_OUT)],
                unwanted: vec![],
            },
            Case {
                what: "a foreign second source linked in goes",
                chosen: None,
                released: false,
                links: vec![link(90, MIC, MIC_OUT), link(91, OTHER, OTHER_OUT)],
                source: Some(MIC),
                wanted: vec![want(MIC, MIC_OUT)],
                unwanted: vec![91],
            },
            Case {
                what: "the user picks another source: the old link goes",
                chosen: Some("usb-mic"),
                released: false,
                links: vec![link(90, MIC, MIC_OUT)],
                source: Some(OTHER),
                wanted: vec![want(OTHER, OTHER_OUT)],
                unwanted: vec![90],
            },
            Case {
                what: "released while muted: nothing wanted, every link goes",
                chosen: None,
                released: true,
                links: vec![link(90, MIC, MIC_OUT)],
                source: None,
                wanted: vec![],
                unwanted: vec![90],
            },
            Case {
                what: "HardMute asked for as its own source: refused, nothing linked",
                chosen: Some(HARDMUTE_NODE_NAME),
                released: false,
                links: vec![],
                source: None,
                wanted: vec![],
                unwanted: vec![],
            },
        ];
        for case in cases {
            let mut g = base();
            for l in &case.links {
                g.links.insert(l.id, *l);
            }
            let plan = g.plan_links(case.chosen, case.released);
            assert_eq!(plan.capture, Some(CAPTURE), "{}", case.what);
            assert_eq!(plan.source, case.source, "{}", case.what);
            assert_eq!(plan.wanted, case.wanted, "{}", case.what);
            let unwanted: Vec<u32> = plan.unwanted.iter().map(|l| l.id).collect();
            assert_eq!(unwanted, case.unwanted, "{}", case.what);
        }
        // No gate in the graph: nothing to plan.
        let mut g = base();
        g.nodes.remove(&CAPTURE);
        assert_eq!(g.plan_links(None, false), LinkPlan::default());
    }
}
