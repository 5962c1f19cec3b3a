//! `hardmute check`: every route by which an app of this user could hear the room while
//! HardMute says muted (docs/design.md invariant 7), each tried as far as the OS allows, as a
//! table: route, OPEN / closed / unknown, how to close it.
//!
//! From hardmuted (every OS): whether the OS's default input is HardMute, and which apps record a
//! physical mic right now. On Linux it also records through each route with real clients while
//! muted (about 0.3 s each): `parecord` and `pw-record` with no device named (the default), the
//! HardMute Microphone itself, and every physical source apps can see (`pw-record --target`); any
//! non-zero sample = OPEN. It reads the graph (`pw-dump`) for links into the HardMute Microphone
//! from outside HardMute. Recording a physical mic opens it for that moment, so the OS's "mic in
//! use" signals flicker during a check.

use hardmute_ipc::{GuardState, ListenTarget, Listener, State};
use serde::Serialize;

/// What a route is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// An app can hear the room through it while muted.
    Open,
    Closed,
    /// Not tried (needs a mute, or not possible on this OS), or the try failed.
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Route {
    pub route: String,
    pub status: Verdict,
    /// What was found (or tried).
    pub detail: String,
    /// How to close it (empty when closed).
    pub fix: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub muted: bool,
    pub routes: Vec<Route>,
    /// Routes found OPEN.
    pub open: usize,
}

impl Report {
    pub fn new(muted: bool, routes: Vec<Route>) -> Self {
        let open = routes.iter().filter(|r| r.status == Verdict::Open).count();
        Self {
            muted,
            routes,
            open,
        }
    }
}

fn route(
    route: impl Into<String>,
    status: Verdict,
    detail: impl Into<String>,
    fix: impl Into<String>,
) -> Route {
    Route {
        route: route.into(),
        status,
        detail: detail.into(),
        fix: fix.into(),
    }
}

/// The routes hardmuted can answer for on every OS.
pub fn daemon_routes(state: &State, listeners: &[Listener]) -> Vec<Route> {
    let mut routes = Vec::new();
    routes.push(match state.default_input_protected {
        Some(true) => route(
            "default input",
            Verdict::Closed,
            "the default input is the HardMute Microphone",
            "",
        ),
        Some(false) => route(
            "default input",
            Verdict::Open,
            format!(
                "the default input is {}: apps that record the default hear the room",
                state.default_input.as_deref().unwrap_or("another input")
            ),
            "run `hardmute protect` (makes HardMute the default input again)",
        ),
        None => route(
            "default input",
            Verdict::Unknown,
            format!(
                "the {} backend does not read the OS's default input",
                state.backend
            ),
            "make \"HardMute Microphone\" the default input in the system's sound settings",
        ),
    });
    // HardMute's own bridge must hold the physical mic (that is how audio reaches the HardMute
    // Microphone): the backend marks it `own` by the OS-verified pid. Any other process there
    // bypasses the mute, whatever it calls itself.
    let physical: Vec<_> = listeners
        .iter()
        .filter(|l| !l.own)
        .filter_map(|l| match &l.target {
            ListenTarget::Physical { name } => Some((l, name)),
            ListenTarget::Virtual => None,
        })
        .collect();
    if physical.is_empty() {
        routes.push(route(
            "apps recording a physical mic now",
            Verdict::Closed,
            "none",
            "",
        ));
    }
    for (l, name) in physical {
        routes.push(route(
            "apps recording a physical mic now",
            Verdict::Open,
            format!(
                "{} (pid {}) records {name} directly, not through HardMute",
                l.app,
                l.pid.map_or_else(|| "?".into(), |p| p.to_string())
            ),
            format!(
                "stop it, or choose \"HardMute Microphone\" as its input{}",
                l.pid.map_or_else(String::new, |p| format!(" (kill {p})"))
            ),
        ));
    }
    routes
}

/// The guard's route where it is not built (macOS, Windows).
#[cfg_attr(target_os = "linux", allow(dead_code))]
pub fn guard_not_built() -> Route {
    route(
        GUARD_ROUTE,
        Verdict::Unknown,
        "not built on this OS: any app may open a physical mic by name",
        "see docs/threat-model.md (routes table)",
    )
}

pub const GUARD_ROUTE: &str = "guard (apps kept off the physical mic)";

/// The guard's route where hardmuted holds it (macOS hog mode, Windows exclusive mode), from
/// what the daemon reports: closed only while it holds the mic. Not tried by recording: the
/// daemon's word (the OS call it made succeeded) is what this reports.
pub fn guard_route(guard: Option<&GuardState>) -> Route {
    match guard {
        None => guard_not_built(),
        Some(g) if !g.on => route(
            GUARD_ROUTE,
            Verdict::Open,
            "the guard is off: any app may open a physical mic by name",
            "`hardmute guard on` (takes the mic from every other app: docs/threat-model.md)",
        ),
        Some(g) if g.holds => route(
            GUARD_ROUTE,
            Verdict::Closed,
            "hardmuted holds the physical mic (other apps are refused it)",
            "",
        ),
        Some(g) => route(
            GUARD_ROUTE,
            Verdict::Open,
            format!(
                "the guard is on but does not hold: {}",
                g.why_not.as_deref().unwrap_or("reason unknown")
            ),
            "close the app that holds the mic, then `hardmute guard off` and `hardmute guard on`",
        ),
    }
}

/// The guard line of `status` and `hardmute guard status` where hardmuted holds it.
pub fn guard_line(guard: &GuardState) -> String {
    match (guard.on, guard.holds) {
        (false, _) => "off".to_owned(),
        (true, true) => "on, holding the physical mic".to_owned(),
        (true, false) => format!(
            "on, NOT holding the physical mic ({})",
            guard.why_not.as_deref().unwrap_or("reason unknown")
        ),
    }
}

/// The guard's verdict on Linux from what was tried: whether its configuration is installed,
/// which physical sources an app of this user still sees listed, and what recording each one
/// by name heard while muted (`None`: HardMute is live, nothing was recorded).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub fn guard_verdict(
    installed: bool,
    sources: &[String],
    listed: &[String],
    heard: Option<&[(String, Result<Heard, String>)]>,
) -> Route {
    if !installed {
        return route(
            GUARD_ROUTE,
            Verdict::Open,
            "off: any app may open a physical mic by name",
            "run `hardmute guard on` (docs/threat-model.md: what it closes, what stays open)",
        );
    }
    let fix_broken = "restart PipeWire and WirePlumber (`systemctl --user restart pipewire wireplumber`); see docs/threat-model.md for your PipeWire version";
    if !listed.is_empty() {
        return route(
            GUARD_ROUTE,
            Verdict::Open,
            format!(
                "on, but apps still see {} (the guard does not hold)",
                listed.join(", ")
            ),
            fix_broken,
        );
    }
    let Some(heard) = heard else {
        return route(
            GUARD_ROUTE,
            Verdict::Unknown,
            "on; not tried while live",
            "run `hardmute mute`, then `hardmute check` again",
        );
    };
    if sources.is_empty() {
        return route(
            GUARD_ROUTE,
            Verdict::Unknown,
            "on; no physical source known to try",
            "",
        );
    }
    let loud: Vec<_> = heard
        .iter()
        .filter(|(_, h)| matches!(h, Ok(h) if h.nonzero > 0))
        .map(|(n, _)| n.as_str())
        .collect();
    if !loud.is_empty() {
        return route(
            GUARD_ROUTE,
            Verdict::Open,
            format!(
                "on, but a recording of {} by name heard the room",
                loud.join(", ")
            ),
            fix_broken,
        );
    }
    route(
        GUARD_ROUTE,
        Verdict::Closed,
        format!(
            "on: {} hidden from apps; recording each by name got no sound",
            sources.join(", ")
        ),
        "",
    )
}

/// Whether a recording heard anything. (The recording routes run on Linux only so far.)
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heard {
    pub samples: usize,
    pub nonzero: usize,
}

/// The 16-bit PCM samples of a WAV file as a recorder leaves it (the `data` chunk to the end of
/// the file, whatever its size field says: a recorder stopped early may not have set it).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub fn heard_in_wav(bytes: &[u8]) -> Result<Heard, String> {
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err("not a WAV file".into());
    }
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let size = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]])
            as usize;
        if id == b"data" {
            let data = &bytes[at + 8..];
            let samples = data.len() / 2;
            let nonzero = data
                .chunks_exact(2)
                .filter(|s| i16::from_le_bytes([s[0], s[1]]) != 0)
                .count();
            return Ok(Heard { samples, nonzero });
        }
        at += 8 + size + (size & 1);
    }
    Err("no data chunk".into())
}

/// The verdict on one recording made while muted.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub fn verdict_of(heard: &Result<Heard, String>, min_samples: usize) -> (Verdict, String) {
    match heard {
        Ok(h) if h.nonzero > 0 => (
            Verdict::Open,
            format!(
                "recorded {} non-zero samples of {} while muted",
                h.nonzero, h.samples
            ),
        ),
        Ok(h) if h.samples >= min_samples => (
            Verdict::Closed,
            format!(
                "recorded {} samples while muted, all exactly zero",
                h.samples
            ),
        ),
        Ok(h) => (
            Verdict::Unknown,
            format!("the recording got only {} samples (not linked?)", h.samples),
        ),
        Err(e) => (Verdict::Unknown, format!("could not record: {e}")),
    }
}

pub fn print_table(report: &Report) {
    let width = report
        .routes
        .iter()
        .map(|r| r.route.len())
        .max()
        .unwrap_or(5)
        .max(5);
    println!(
        "HardMute is {}. Routes by which an app could hear the room while muted:",
        if report.muted {
            "MUTED"
        } else {
            "LIVE (recordings not tried; mute and check again)"
        }
    );
    println!(
        "{:<width$}  {:<7}  what / how to close it",
        "route", "status"
    );
    for r in &report.routes {
        let status = match r.status {
            Verdict::Open => "OPEN",
            Verdict::Closed => "closed",
            Verdict::Unknown => "unknown",
        };
        println!("{:<width$}  {:<7}  {}", r.route, status, r.detail);
        if !r.fix.is_empty() {
            println!("{:<width$}  {:<7}  -> {}", "", "", r.fix);
        }
    }
    if report.open == 0 {
        println!("No open route found.");
    } else {
        println!("{} route(s) OPEN.", report.open);
    }
}

#[cfg(target_os = "linux")]
pub mod linux {
    //! The routes tried by recording, on PipeWire.
    use super::{heard_in_wav, route, verdict_of, Heard, Route, Verdict};
    use std::path::Path;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    /// The HardMute Microphone's node name.
    pub const HARDMUTE_NODE: &str = "hardmute_mic";
    /// How much each recording must capture (0.3 s at 48 kHz mono).
    const WANT_SAMPLES: usize = 14_400;

    /// A node of the graph.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Node {
        pub id: u64,
        pub name: String,
        pub media_class: String,
        /// `pipewire.sec.pid` of the client that made it (`client.id`): both set by the server.
        pub maker_pid: Option<u64>,
    }

    /// A link: (output node id, input node id).
    pub type Link = (u64, u64);

    /// Nodes and links from `pw-dump`'s JSON.
    pub fn parse_dump(json: &str) -> Result<(Vec<Node>, Vec<Link>), String> {
        let v: serde_json::Value =
            serde_json::from_str(json).map_err(|e| format!("pw-dump: {e}"))?;
        let objects = v.as_array().ok_or("pw-dump: not an array")?;
        // pw-dump writes numeric props as numbers; accept strings too.
        let number = |v: &serde_json::Value| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        };
        let client_pid: std::collections::HashMap<u64, u64> = objects
            .iter()
            .filter(|o| o["type"] == "PipeWire:Interface:Client")
            .filter_map(|o| {
                Some((
                    o["id"].as_u64()?,
                    number(&o["info"]["props"]["pipewire.sec.pid"])?,
                ))
            })
            .collect();
        let mut nodes = Vec::new();
        let mut links = Vec::new();
        for o in objects {
            let kind = o["type"].as_str().unwrap_or_default();
            let info = &o["info"];
            if kind == "PipeWire:Interface:Node" {
                let props = &info["props"];
                nodes.push(Node {
                    id: o["id"].as_u64().unwrap_or_default(),
                    name: props["node.name"].as_str().unwrap_or_default().to_owned(),
                    media_class: props["media.class"].as_str().unwrap_or_default().to_owned(),
                    maker_pid: number(&props["client.id"])
                        .and_then(|c| client_pid.get(&c).copied()),
                });
            } else if kind == "PipeWire:Interface:Link" {
                if let (Some(out), Some(inp)) = (
                    info["output-node-id"].as_u64(),
                    info["input-node-id"].as_u64(),
                ) {
                    links.push((out, inp));
                }
            }
        }
        Ok((nodes, links))
    }

    /// HardMute's own node: made by the PipeWire server (`server`: its pid by its socket's
    /// peer credentials), which is where the gate's nodes come from. A name is not enough: any
    /// app can call its node `hardmute_...`.
    pub fn is_hardmute(node: &Node, server: Option<u64>) -> bool {
        // Without the server's pid (a socket-activated PipeWire) the name decides.
        node.name.starts_with("hardmute") && (server.is_none() || node.maker_pid == server)
    }

    /// Sources apps can pick that are not HardMute's.
    pub fn physical_sources(nodes: &[Node], server: Option<u64>) -> Vec<&Node> {
        nodes
            .iter()
            .filter(|n| n.media_class.starts_with("Audio/Source") && !is_hardmute(n, server))
            .collect()
    }

    /// Links that feed a node named like the HardMute Microphone (after the gate) from outside
    /// HardMute.
    pub fn links_into_hardmute<'a>(
        nodes: &'a [Node],
        links: &[(u64, u64)],
        server: Option<u64>,
    ) -> Vec<&'a Node> {
        let by_id = |id| nodes.iter().find(|n| n.id == id);
        links
            .iter()
            .filter_map(|&(out, inp)| {
                let (out, inp) = (by_id(out)?, by_id(inp)?);
                (inp.name == HARDMUTE_NODE && !is_hardmute(out, server)).then_some(out)
            })
            .collect()
    }

    /// Records with `cmd` (which writes a 16-bit WAV to `file`) until it holds
    /// [`WANT_SAMPLES`] or 3 s pass, then stops it like Ctrl-C.
    fn record(mut cmd: Command, file: &Path) -> Result<Heard, String> {
        let program = format!("{:?}", cmd.get_program());
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run {program}: {e}"))?;
        let start = Instant::now();
        let want_bytes = 44 + 2 * WANT_SAMPLES as u64;
        while start.elapsed() < Duration::from_secs(3) {
            if std::fs::metadata(file).is_ok_and(|m| m.len() >= want_bytes) {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("{program} exited: {status}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(2);
        while child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let bytes = std::fs::read(file).map_err(|e| format!("{program} wrote nothing: {e}"))?;
        heard_in_wav(&bytes)
    }

    fn pw_record(target: Option<&str>, file: &Path) -> Result<Heard, String> {
        let mut cmd = Command::new("pw-record");
        if let Some(t) = target {
            cmd.args(["--target", t]);
        }
        cmd.args(["--rate", "48000", "--channels", "1", "--format", "s16"])
            .args([
                "-P",
                "{ node.name = hardmute-check media.role = Communication }",
            ])
            .arg(file);
        record(cmd, file)
    }

    fn parecord_default(file: &Path) -> Result<Heard, String> {
        let mut cmd = Command::new("parecord");
        cmd.args([
            "--rate=48000",
            "--channels=1",
            "--format=s16le",
            "--file-format=wav",
        ])
        .args(["--client-name=hardmute-check", "--latency-msec=20"])
        .arg(file);
        record(cmd, file)
    }

    /// Every recording route, tried now. `muted`: only then are recordings made.
    /// `known`: the physical sources hardmuted names (with the guard on, apps, this check
    /// included, do not see them in the graph); `guard_on`: the guard's files are installed.
    pub fn routes(muted: bool, guard_on: bool, known: &[String]) -> Vec<Route> {
        let mut routes = Vec::new();
        // The graph as pw-dump sees it. From PipeWire 1.0 on, pw-dump asks for the session
        // manager's socket first even when told `-r pipewire-0` (remote.intention = manager),
        // and that socket sees what apps on `pipewire-0` may not: what apps see is taken from
        // `pw-link -o` on the apps' socket below.
        let dump = Command::new("pw-dump")
            .args(["-r", "pipewire-0"])
            .stderr(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run pw-dump: {e}"))
            .and_then(|o| String::from_utf8(o.stdout).map_err(|e| e.to_string()))
            .and_then(|s| parse_dump(&s));
        let (nodes, links) = match dump {
            Ok(d) => d,
            Err(e) => {
                routes.push(route(
                    "PipeWire graph",
                    Verdict::Unknown,
                    e,
                    "is PipeWire running?",
                ));
                return routes;
            }
        };
        // Which nodes are HardMute's: those the server itself made (its pid from the kernel).
        let server = match hardmute_linux_gate::server::server_pid_at(
            &hardmute_linux_gate::server::socket_paths(Some("pipewire-0"), |k| {
                std::env::var(k).ok()
            }),
        ) {
            Ok(pid) => Some(u64::from(pid)),
            Err(e) => {
                routes.push(route(
                    "PipeWire server",
                    Verdict::Unknown,
                    format!(
                        "cannot tell which process it is ({e}): HardMute's nodes are recognised by name, which an app could imitate"
                    ),
                    "run the check as the user whose PipeWire it is; a PipeWire process must hold its socket",
                ));
                None
            }
        };
        let into = links_into_hardmute(&nodes, &links, server);
        if into.is_empty() {
            routes.push(route(
                "links into HardMute Microphone",
                Verdict::Closed,
                "none from outside HardMute",
                "",
            ));
        }
        for n in into {
            routes.push(route(
                "links into HardMute Microphone",
                Verdict::Open,
                format!(
                    "{} (node {}) is linked into hardmute_mic, after the gate",
                    n.name, n.id
                ),
                format!("pw-link -d {} {HARDMUTE_NODE}", n.name),
            ));
        }
        let in_dump: Vec<String> = physical_sources(&nodes, server)
            .iter()
            .map(|n| n.name.clone())
            .collect();
        let mut sources = in_dump.clone();
        for k in known {
            if !sources.contains(k) && !k.starts_with("hardmute") {
                sources.push(k.clone());
            }
        }
        // Which of them an app on the apps' socket sees. Where there is a manager's socket
        // (PipeWire 1.x), pw-dump's view is that socket's: ask pw-link there instead (it waits
        // for the registry's first round trip and takes `-r` as given).
        let manager = manager_socket();
        let listed: Vec<String> = match &manager {
            None => in_dump.clone(),
            Some(_) => match apps_socket_ports() {
                Ok(out) => listed_by_ports(&sources, &out),
                Err(e) => {
                    routes.push(route(
                        "what apps on pipewire-0 see",
                        Verdict::Unknown,
                        e,
                        "is pw-link (pipewire-bin) installed?",
                    ));
                    in_dump.clone()
                }
            },
        };
        if let (true, Some(path)) = (guard_on, &manager) {
            routes.push(route(
                "session manager's socket",
                Verdict::Open,
                format!(
                    "{} gives every client there all permissions, and any app of this user can \
                     connect to it: the guard cannot hide the physical mic from such an app",
                    path.display()
                ),
                "none within PipeWire 1.x (docs/threat-model.md: what stays open)",
            ));
        }
        if !muted {
            routes.push(super::guard_verdict(guard_on, &sources, &listed, None));
            routes.push(route(
                "recordings",
                Verdict::Unknown,
                format!(
                    "HardMute is live: {} physical source(s) not tried",
                    sources.len()
                ),
                "run `hardmute mute`, then `hardmute check` again",
            ));
            return routes;
        }
        let dir = match tempfile_dir() {
            Ok(d) => d,
            Err(e) => {
                routes.push(route("recordings", Verdict::Unknown, e, ""));
                return routes;
            }
        };
        let fix_default = "run `hardmute protect`; then check which app picks another default";
        let heard = parecord_default(&dir.join("pa-default.wav"));
        let (v, d) = verdict_of(&heard, WANT_SAMPLES);
        routes.push(route(
            "default input (parecord, no device)",
            v,
            d,
            if v == Verdict::Open { fix_default } else { "" },
        ));
        let heard = pw_record(None, &dir.join("pw-default.wav"));
        let (v, d) = verdict_of(&heard, WANT_SAMPLES);
        routes.push(route(
            "default input (pw-record, no target)",
            v,
            d,
            if v == Verdict::Open { fix_default } else { "" },
        ));
        let heard = pw_record(Some(HARDMUTE_NODE), &dir.join("hardmute.wav"));
        let (v, d) = verdict_of(&heard, WANT_SAMPLES);
        routes.push(route(
            "HardMute Microphone itself",
            v,
            d,
            if v == Verdict::Open {
                "a broken gate or something linked after it: report a bug; `hardmute listeners`"
            } else {
                ""
            },
        ));
        let mut tried = Vec::new();
        for (i, n) in sources.iter().enumerate() {
            let heard = pw_record(Some(n), &dir.join(format!("src{i}.wav")));
            let (v, d) = verdict_of(&heard, WANT_SAMPLES);
            let (v, d) = match (&heard, v) {
                // Guarded: the name leads nowhere an app can hear the room.
                (Err(_), _) | (Ok(_), Verdict::Unknown) if guard_on && !listed.contains(n) => {
                    (Verdict::Closed, format!("hidden by the guard ({d})"))
                }
                _ => (v, d),
            };
            routes.push(route(
                format!("physical source {n} (by name)"),
                v,
                d,
                if v == Verdict::Open {
                    "any app may pick this mic by name: `hardmute guard on` keeps apps off it (docs/threat-model.md)"
                } else {
                    ""
                },
            ));
            tried.push((n.clone(), heard));
        }
        routes.push(super::guard_verdict(
            guard_on,
            &sources,
            &listed,
            Some(&tried),
        ));
        let _ = std::fs::remove_dir_all(&dir);
        routes
    }

    /// The session manager's socket (`pipewire-0-manager`, PipeWire 1.x), if this PipeWire has
    /// one that accepts connections.
    fn manager_socket() -> Option<std::path::PathBuf> {
        hardmute_linux_gate::server::socket_paths(Some("pipewire-0-manager"), |k| {
            std::env::var(k).ok()
        })
        .into_iter()
        .find(|p| std::os::unix::net::UnixStream::connect(p).is_ok())
    }

    /// `pw-link -o` on the apps' socket: the output ports an app there sees.
    fn apps_socket_ports() -> Result<String, String> {
        let out = Command::new("pw-link")
            .args(["-r", "pipewire-0", "-o"])
            .stderr(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run pw-link: {e}"))?;
        if !out.status.success() {
            return Err(format!("pw-link -o on pipewire-0 failed ({})", out.status));
        }
        String::from_utf8(out.stdout).map_err(|e| e.to_string())
    }

    /// The sources among `names` that have an output port in a `pw-link -o` listing
    /// (`node:port` per line).
    pub(super) fn listed_by_ports(names: &[String], listing: &str) -> Vec<String> {
        let nodes: std::collections::HashSet<&str> = listing
            .lines()
            .filter_map(|l| l.trim().rsplit_once(':').map(|(node, _)| node))
            .collect();
        names
            .iter()
            .filter(|n| nodes.contains(n.as_str()))
            .cloned()
            .collect()
    }

    fn tempfile_dir() -> Result<std::path::PathBuf, String> {
        let base = std::env::var_os("XDG_RUNTIME_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let dir = base.join(format!("hardmute-check.{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(dir)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        // The server (pid 900) made the gate's nodes through its own client 19; an app (client
        // 34, pid 4000) made a source it calls hardmute_spare.
        const DUMP: &str = r#"[
          {"id":19,"type":"PipeWire:Interface:Client","info":{"props":{"application.name":"pipewire","pipewire.sec.pid":900}}},
          {"id":34,"type":"PipeWire:Interface:Client","info":{"props":{"application.name":"pipewire","pipewire.sec.pid":4000}}},
          {"id":28,"type":"PipeWire:Interface:Node","info":{"props":{"node.name":"fake-mic","media.class":"Audio/Source/Virtual"}}},
          {"id":40,"type":"PipeWire:Interface:Node","info":{"props":{"node.name":"hardmute_mic","media.class":"Audio/Source/Virtual","client.id":19}}},
          {"id":41,"type":"PipeWire:Interface:Node","info":{"props":{"node.name":"hardmute_feeder","media.class":"Stream/Input/Audio","client.id":19}}},
          {"id":45,"type":"PipeWire:Interface:Node","info":{"props":{"node.name":"hardmute_spare","media.class":"Audio/Source","client.id":34}}},
          {"id":50,"type":"PipeWire:Interface:Node","info":{"props":{"node.name":"auto_null","media.class":"Audio/Sink"}}},
          {"id":60,"type":"PipeWire:Interface:Link","info":{"output-node-id":28,"input-node-id":41}},
          {"id":61,"type":"PipeWire:Interface:Link","info":{"output-node-id":41,"input-node-id":40}},
          {"id":62,"type":"PipeWire:Interface:Link","info":{"output-node-id":28,"input-node-id":40}},
          {"id":63,"type":"PipeWire:Interface:Link","info":{"output-node-id":45,"input-node-id":40}},
          {"id":1,"type":"PipeWire:Interface:Core","info":{}}
        ]"#;

        #[test]
        fn finds_physical_sources_and_links_after_the_gate() {
            let (nodes, links) = parse_dump(DUMP).unwrap();
            assert_eq!(nodes.len(), 5);
            assert_eq!(links.len(), 4);
            let server = Some(900);
            let names: Vec<_> = physical_sources(&nodes, server)
                .iter()
                .map(|n| n.name.clone())
                .collect();
            assert_eq!(
                names,
                ["fake-mic", "hardmute_spare"],
                "an app's node is tried whatever its name"
            );
            // The mic into the gate's input and the gate into hardmute_mic are HardMute's own;
            // the mic or an app's node straight into hardmute_mic is a route around the gate.
            let into: Vec<_> = links_into_hardmute(&nodes, &links, server)
                .iter()
                .map(|n| n.id)
                .collect();
            assert_eq!(into, [28, 45]);
            // Without the server's pid (no PipeWire process found behind the socket) the name decides.
            assert_eq!(physical_sources(&nodes, None).len(), 1);
            assert!(parse_dump("{}").is_err());
        }

        #[test]
        fn what_apps_see_is_read_from_their_port_listing() {
            let names = [
                "fake-mic".to_owned(),
                "usb:mic".to_owned(),
                "gone".to_owned(),
            ];
            let listing = "hardmute_mic:capture_MONO\nfake-mic-player:output_MONO\n  usb:mic:capture_FL\nusb:mic:capture_FR\n";
            // A node's name may hold a colon; a longer name with the same start is another node.
            assert_eq!(listed_by_ports(&names, listing), ["usb:mic"]);
            assert_eq!(
                listed_by_ports(&names, "fake-mic:capture_MONO\n"),
                ["fake-mic"]
            );
            assert!(listed_by_ports(&names, "").is_empty());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hardmute_ipc::{ChangeSource, Counters, HotkeyMode};

    fn wav(samples: &[i16]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(b"RIFF\0\0\0\0WAVEfmt ");
        b.extend_from_slice(&16u32.to_le_bytes());
        b.extend_from_slice(&[1, 0, 1, 0]);
        b.extend_from_slice(&48000u32.to_le_bytes());
        b.extend_from_slice(&96000u32.to_le_bytes());
        b.extend_from_slice(&[2, 0, 16, 0]);
        b.extend_from_slice(b"LIST");
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&[1, 2, 3, 0]); // odd chunk + pad byte
        b.extend_from_slice(b"data");
        b.extend_from_slice(&0u32.to_le_bytes()); // size never written: read to the end
        for s in samples {
            b.extend_from_slice(&s.to_le_bytes());
        }
        b
    }

    #[test]
    fn wav_samples_are_counted_and_any_nonzero_is_open() {
        let h = heard_in_wav(&wav(&[0, 0, 3, 0, -1])).unwrap();
        assert_eq!(
            h,
            Heard {
                samples: 5,
                nonzero: 2
            }
        );
        assert_eq!(verdict_of(&Ok(h), 5).0, Verdict::Open);
        let zeros = heard_in_wav(&wav(&[0; 100])).unwrap();
        assert_eq!(verdict_of(&Ok(zeros), 100).0, Verdict::Closed);
        assert_eq!(
            verdict_of(&Ok(zeros), 101).0,
            Verdict::Unknown,
            "too short to say closed"
        );
        assert_eq!(verdict_of(&Err("x".into()), 1).0, Verdict::Unknown);
        assert!(heard_in_wav(b"RIFF....WAVE").is_err());
        assert!(heard_in_wav(b"garbage").is_err());
    }

    fn state(protected: Option<bool>) -> State {
        State {
            muted: true,
            generation: 1,
            source: ChangeSource::Cli,
            backend: "linux".into(),
            device: None,
            release_on_mute: false,
            start_muted: false,
            fade_ms: 5,
            hotkey: None,
            hotkey_mode: HotkeyMode::Toggle,
            physical_open: true,
            counters: Counters::default(),
            default_input: Some("usb".into()),
            default_input_protected: protected,
            not_owner: None,
            guard: None,
        }
    }

    #[test]
    fn the_daemon_held_guard_is_closed_only_while_it_holds() {
        assert_eq!(guard_route(None), guard_not_built());
        let off = GuardState::default();
        assert_eq!(guard_route(Some(&off)).status, Verdict::Open);
        assert_eq!(guard_line(&off), "off");
        let holds = GuardState {
            on: true,
            holds: true,
            why_not: None,
        };
        assert_eq!(guard_route(Some(&holds)).status, Verdict::Closed);
        assert_eq!(guard_line(&holds), "on, holding the physical mic");
        let taken = GuardState {
            on: true,
            holds: false,
            why_not: Some("pid 77 hogs Built-in Microphone".into()),
        };
        let r = guard_route(Some(&taken));
        assert_eq!(r.status, Verdict::Open);
        assert!(r.detail.contains("pid 77"), "{}", r.detail);
        assert!(!r.fix.is_empty());
        assert!(
            guard_line(&taken).contains("NOT holding") && guard_line(&taken).contains("pid 77")
        );
        let report = Report::new(true, vec![guard_route(Some(&taken))]);
        assert_eq!(report.open, 1);
    }

    #[test]
    fn the_guard_is_closed_only_when_hidden_and_silent() {
        let src = vec!["usb".to_string()];
        let zeros = Heard {
            samples: 14_400,
            nonzero: 0,
        };
        let loud = Heard {
            samples: 14_400,
            nonzero: 9,
        };
        let tried = |h: Result<Heard, String>| vec![("usb".to_string(), h)];
        // Off: open, whatever was heard.
        let r = guard_verdict(false, &src, &[], Some(&tried(Ok(zeros))));
        assert_eq!(r.status, Verdict::Open);
        assert!(r.fix.contains("hardmute guard on"));
        // On, but an app still sees the source listed: open.
        let r = guard_verdict(true, &src, &src, Some(&tried(Ok(zeros))));
        assert_eq!(r.status, Verdict::Open);
        assert!(r.detail.contains("usb"));
        // On, hidden, but a recording by name heard the room: open.
        let r = guard_verdict(true, &src, &[], Some(&tried(Ok(loud))));
        assert_eq!(r.status, Verdict::Open);
        // On, hidden, silent (zeros or refused): closed.
        let r = guard_verdict(true, &src, &[], Some(&tried(Ok(zeros))));
        assert_eq!(r.status, Verdict::Closed);
        let r = guard_verdict(true, &src, &[], Some(&tried(Err("no target".into()))));
        assert_eq!(r.status, Verdict::Closed);
        // On but live (nothing recorded), or no source known: never closed.
        assert_eq!(
            guard_verdict(true, &src, &[], None).status,
            Verdict::Unknown
        );
        assert_eq!(
            guard_verdict(true, &[], &[], Some(&[])).status,
            Verdict::Unknown
        );
    }

    #[test]
    fn daemon_routes_name_the_default_and_direct_recorders() {
        let listeners = vec![
            Listener {
                app: "zoom".into(),
                pid: Some(42),
                binary: None,
                target: ListenTarget::Physical { name: "usb".into() },
                own: false,
            },
            Listener {
                app: "firefox".into(),
                pid: Some(7),
                binary: None,
                target: ListenTarget::Virtual,
                own: false,
            },
            // HardMute's own bridge holds the physical mic: not a route around the mute.
            Listener {
                app: "hardmuted bridge".into(),
                pid: Some(9),
                binary: None,
                target: ListenTarget::Physical { name: "usb".into() },
                own: true,
            },
            // A process that names itself like HardMute is still a route around it.
            Listener {
                app: "hardmuted".into(),
                pid: Some(66),
                binary: None,
                target: ListenTarget::Physical { name: "usb".into() },
                own: false,
            },
        ];
        let r = Report::new(true, daemon_routes(&state(Some(false)), &listeners));
        assert_eq!(r.open, 3, "{:#?}", r.routes);
        assert!(r.routes[0].detail.contains("usb") && r.routes[0].fix.contains("hardmute protect"));
        assert!(r.routes[1].detail.contains("zoom (pid 42)"));
        assert!(r.routes[2].detail.contains("hardmuted (pid 66)"));
        assert!(!r.routes.iter().any(|r| r.detail.contains("pid 9)")));
        let r = Report::new(true, daemon_routes(&state(Some(true)), &[]));
        assert_eq!(r.open, 0);
        assert_eq!(r.routes.len(), 2);
        assert_eq!(
            guard_not_built().status,
            Verdict::Unknown,
            "no guard: never called closed"
        );
        let r = Report::new(true, daemon_routes(&state(None), &[]));
        assert_eq!(r.routes[0].status, Verdict::Unknown);
    }
}
