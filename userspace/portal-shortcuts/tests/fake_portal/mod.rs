//! A stand-in for xdg-desktop-portal, written from the portal documentation
//! (org.freedesktop.portal.GlobalShortcuts, .Request, .Session, .host.portal.Registry), on a
//! private D-Bus daemon this module starts. It is NOT the real portal: it answers as the spec says
//! a portal answers, and lets the test choose the desktop's answer.

#![allow(dead_code)] // each test binary uses a different part

use parking_lot::Mutex;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zbus::object_server::SignalEmitter;
use zbus::zvariant::{Array, ObjectPath, OwnedObjectPath, OwnedValue, Signature, Structure, Value};
use zbus::{fdo, interface, Connection, ObjectServer};

pub const PORTAL_NAME: &str = "org.freedesktop.portal.Desktop";
pub const PORTAL_PATH: &str = "/org/freedesktop/portal/desktop";
const GLOBAL_SHORTCUTS: &str = "org.freedesktop.portal.GlobalShortcuts";

/// A dbus-daemon of our own: no service directories, so nothing on this machine (a real
/// xdg-desktop-portal included) can be activated on it.
pub struct PrivateBus {
    child: Child,
    pub address: String,
    _dir: tempfile::TempDir,
}

impl PrivateBus {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir for the private bus");
        let config = dir.path().join("bus.conf");
        let socket = dir.path().join("bus");
        let log = dir.path().join("dbus-daemon.log");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
                socket.display()
            ),
        )
        .expect("write the bus config");
        let mut child = match Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--print-address"])
            .stdout(Stdio::piped())
            // Kept in a file: as root it warns about the fd limit on every start, which is noise
            // unless it fails to start.
            .stderr(std::fs::File::create(&log).expect("bus log file"))
            .spawn()
        {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "dbus-daemon is not installed: these tests run a private D-Bus daemon. \
                 Install it (Debian/Ubuntu: apt-get install dbus; Fedora: dnf install dbus-daemon)."
            ),
            Err(e) => panic!("cannot start dbus-daemon: {e}"),
        };
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .expect("read the bus address");
        let address = line.trim().to_owned();
        assert!(
            address.starts_with("unix:"),
            "dbus-daemon printed no address ({line:?}); its log: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Self {
            child,
            address,
            _dir: dir,
        }
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How the fake "desktop" answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Response 0 and bind everything asked, with the preferred trigger as description.
    Grant,
    /// Response with this code (1 = cancelled by the user, 2 = other) to BindShortcuts.
    RefuseBind(u32),
    /// Response with this code to CreateSession.
    RefuseSession(u32),
    /// Emit Session::Closed instead of answering BindShortcuts.
    CloseInsteadOfBinding,
}

/// What the fake saw, in order.
#[derive(Default)]
pub struct Log {
    pub calls: Vec<String>,
    /// Per session: the shortcuts as bound (id, description, preferred trigger).
    pub shortcuts: HashMap<String, Vec<(String, String, Option<String>)>>,
    /// Session path -> unique name of its owner.
    pub sessions: HashMap<String, String>,
}

pub struct FakePortal {
    pub connection: Connection,
    pub log: Arc<Mutex<Log>>,
}

fn string_option(options: &HashMap<String, OwnedValue>, key: &str) -> fdo::Result<String> {
    let value = options
        .get(key)
        .ok_or_else(|| fdo::Error::InvalidArgs(format!("missing option {key}")))?;
    value
        .downcast_ref::<&str>()
        .map(str::to_owned)
        .map_err(|_| fdo::Error::InvalidArgs(format!("{key} is not a string")))
}

/// `/org/freedesktop/portal/desktop/<kind>/<SENDER>/<TOKEN>`, as the Request and Session docs
/// define handles (sender's unique name without ':' and with '.' as '_').
fn handle(kind: &str, sender: &str, token: &str) -> fdo::Result<OwnedObjectPath> {
    let sender = sender.trim_start_matches(':').replace('.', "_");
    OwnedObjectPath::try_from(format!("{PORTAL_PATH}/{kind}/{sender}/{token}"))
        .map_err(|e| fdo::Error::InvalidArgs(e.to_string()))
}

fn sender_of(header: &zbus::message::Header<'_>) -> fdo::Result<String> {
    header
        .sender()
        .map(|s| s.to_string())
        .ok_or_else(|| fdo::Error::Failed("call without sender".into()))
}

/// Sends `Response(code, results)` from the request object, after the method's reply has gone
/// out (as the real portal does: the handle first, the answer later).
fn respond_later(
    connection: Connection,
    server_path: OwnedObjectPath,
    code: u32,
    results: HashMap<String, OwnedValue>,
) {
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        zbus::block_on(async {
            connection
                .emit_signal(
                    None::<()>,
                    &server_path,
                    "org.freedesktop.portal.Request",
                    "Response",
                    &(code, results),
                )
                .await
                .expect("emit Response");
            let _ = connection
                .object_server()
                .remove::<FakeRequest, _>(&server_path)
                .await;
        });
    });
}

/// `a(sa{sv})` with description and trigger_description, as BindShortcuts and ListShortcuts
/// results and ShortcutsChanged carry it.
pub fn shortcut_list(shortcuts: &[(String, String, Option<String>)]) -> Array<'static> {
    let signature: Signature = "(sa{sv})".parse().expect("signature");
    let mut array = Array::new(&signature);
    for (id, description, trigger) in shortcuts {
        let mut info: HashMap<String, Value<'static>> = HashMap::new();
        info.insert("description".into(), Value::from(description.clone()));
        info.insert(
            "trigger_description".into(),
            Value::from(trigger.clone().unwrap_or_default()),
        );
        let entry: Structure<'static> = (id.clone(), info).into();
        array.append(Value::Structure(entry)).expect("append");
    }
    array
}

/// The same list as plain Rust values, for a signal body whose signature is static.
pub fn shortcut_entries(
    shortcuts: &[(String, String, Option<String>)],
) -> Vec<(String, HashMap<String, Value<'static>>)> {
    shortcuts
        .iter()
        .map(|(id, description, trigger)| {
            let mut info: HashMap<String, Value<'static>> = HashMap::new();
            info.insert("description".into(), Value::from(description.clone()));
            info.insert(
                "trigger_description".into(),
                Value::from(trigger.clone().unwrap_or_default()),
            );
            (id.clone(), info)
        })
        .collect()
}

struct FakeRequest;

#[interface(name = "org.freedesktop.portal.Request")]
impl FakeRequest {
    async fn close(&self) {}
}

struct FakeSession {
    log: Arc<Mutex<Log>>,
}

#[interface(name = "org.freedesktop.portal.Session")]
impl FakeSession {
    async fn close(
        &self,
        #[zbus(header)] header: zbus::message::Header<'_>,
        #[zbus(object_server)] server: &ObjectServer,
    ) -> fdo::Result<()> {
        let path = header
            .path()
            .map(|p| p.to_string())
            .ok_or_else(|| fdo::Error::Failed("no path".into()))?;
        self.log.lock().calls.push(format!("close {path}"));
        // The session object goes away with the session, as in the real portal.
        let _ = server.remove::<FakeSession, _>(path.as_str()).await;
        Ok(())
    }

    // The spec names it in lower case; zbus would say "Version".
    #[zbus(property, name = "version")]
    fn version(&self) -> u32 {
        1
    }

    #[zbus(signal)]
    async fn closed(
        emitter: &SignalEmitter<'_>,
        details: HashMap<String, Value<'_>>,
    ) -> zbus::Result<()>;
}

struct FakeGlobalShortcuts {
    version: u32,
    answer: Answer,
    log: Arc<Mutex<Log>>,
}

#[interface(name = "org.freedesktop.portal.GlobalShortcuts")]
impl FakeGlobalShortcuts {
    // The spec names it in lower case; zbus would say "Version".
    #[zbus(property, name = "version")]
    fn version(&self) -> u32 {
        self.version
    }

    async fn create_session(
        &self,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] header: zbus::message::Header<'_>,
        #[zbus(object_server)] server: &ObjectServer,
        #[zbus(connection)] connection: &Connection,
    ) -> fdo::Result<OwnedObjectPath> {
        let sender = sender_of(&header)?;
        let request = handle(
            "request",
            &sender,
            &string_option(&options, "handle_token")?,
        )?;
        let session = handle(
            "session",
            &sender,
            &string_option(&options, "session_handle_token")?,
        )?;
        self.log
            .lock()
            .calls
            .push(format!("create_session {session}"));
        server.at(&request, FakeRequest).await?;
        let mut results = HashMap::new();
        let code = match self.answer {
            Answer::RefuseSession(code) => code,
            _ => {
                server
                    .at(
                        &session,
                        FakeSession {
                            log: self.log.clone(),
                        },
                    )
                    .await?;
                self.log
                    .lock()
                    .sessions
                    .insert(session.to_string(), sender.clone());
                // The spec types session_handle as a string in these results.
                results.insert(
                    "session_handle".to_owned(),
                    OwnedValue::from(zbus::zvariant::Str::from(session.as_str().to_owned())),
                );
                0
            }
        };
        respond_later(connection.clone(), request.clone(), code, results);
        Ok(request)
    }

    async fn bind_shortcuts(
        &self,
        session_handle: ObjectPath<'_>,
        shortcuts: Vec<(String, HashMap<String, OwnedValue>)>,
        parent_window: String,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] header: zbus::message::Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> fdo::Result<OwnedObjectPath> {
        let sender = sender_of(&header)?;
        let session = session_handle.to_string();
        if self.log.lock().sessions.get(&session) != Some(&sender) {
            return Err(fdo::Error::AccessDenied(format!(
                "{session} is not a session of {sender}"
            )));
        }
        let request = handle(
            "request",
            &sender,
            &string_option(&options, "handle_token")?,
        )?;
        let mut bound = Vec::new();
        for (id, info) in &shortcuts {
            let description = string_option(info, "description")?;
            let trigger = string_option(info, "preferred_trigger").ok();
            bound.push((id.clone(), description, trigger));
        }
        {
            let mut log = self.log.lock();
            let summary: Vec<String> = bound
                .iter()
                .map(|(id, _, trigger)| format!("{id}={}", trigger.as_deref().unwrap_or("")))
                .collect();
            log.calls.push(format!(
                "bind {session} [{}] parent={parent_window:?}",
                summary.join(" ")
            ));
        }
        connection.object_server().at(&request, FakeRequest).await?;
        match self.answer {
            Answer::Grant | Answer::RefuseSession(_) => {
                let mut results = HashMap::new();
                results.insert(
                    "shortcuts".to_owned(),
                    OwnedValue::try_from(Value::Array(shortcut_list(&bound))).expect("owned"),
                );
                self.log.lock().shortcuts.insert(session, bound);
                respond_later(connection.clone(), request.clone(), 0, results);
            }
            Answer::RefuseBind(code) => {
                respond_later(connection.clone(), request.clone(), code, HashMap::new());
            }
            Answer::CloseInsteadOfBinding => {
                let connection = connection.clone();
                let log = self.log.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(20));
                    zbus::block_on(close_session(&connection, &log, &session));
                });
            }
        }
        Ok(request)
    }

    async fn list_shortcuts(
        &self,
        session_handle: ObjectPath<'_>,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] header: zbus::message::Header<'_>,
        #[zbus(object_server)] server: &ObjectServer,
        #[zbus(connection)] connection: &Connection,
    ) -> fdo::Result<OwnedObjectPath> {
        let sender = sender_of(&header)?;
        let request = handle(
            "request",
            &sender,
            &string_option(&options, "handle_token")?,
        )?;
        let session = session_handle.to_string();
        let bound = {
            let mut log = self.log.lock();
            log.calls.push(format!("list {session}"));
            log.shortcuts.get(&session).cloned().unwrap_or_default()
        };
        server.at(&request, FakeRequest).await?;
        let mut results = HashMap::new();
        results.insert(
            "shortcuts".to_owned(),
            OwnedValue::try_from(Value::Array(shortcut_list(&bound))).expect("owned"),
        );
        respond_later(connection.clone(), request.clone(), 0, results);
        Ok(request)
    }
}

/// The host app registry of xdg-desktop-portal 1.19+.
struct FakeRegistry {
    log: Arc<Mutex<Log>>,
}

#[interface(name = "org.freedesktop.host.portal.Registry")]
impl FakeRegistry {
    // The spec names it in lower case; zbus would say "Version".
    #[zbus(property, name = "version")]
    fn version(&self) -> u32 {
        1
    }

    async fn register(&self, app_id: String, _options: HashMap<String, OwnedValue>) {
        self.log.lock().calls.push(format!("register {app_id}"));
    }
}

/// Another portal interface, for a portal that lacks GlobalShortcuts.
struct FakeSettingsOnly;

#[interface(name = "org.freedesktop.portal.Settings")]
impl FakeSettingsOnly {
    // The spec names it in lower case; zbus would say "Version".
    #[zbus(property, name = "version")]
    fn version(&self) -> u32 {
        2
    }
}

async fn close_session(connection: &Connection, log: &Mutex<Log>, session: &str) {
    log.lock()
        .calls
        .push(format!("closed by desktop {session}"));
    let emitter = SignalEmitter::new(connection, session.to_owned()).expect("session path");
    FakeSession::closed(&emitter, HashMap::new())
        .await
        .expect("emit Closed");
    let _ = connection
        .object_server()
        .remove::<FakeSession, _>(session)
        .await;
}

impl FakePortal {
    /// A portal offering GlobalShortcuts `version`, answering as `answer` says.
    pub fn start(bus: &PrivateBus, version: u32, answer: Answer) -> Self {
        let log = Arc::new(Mutex::new(Log::default()));
        let connection = zbus::block_on(async {
            zbus::connection::Builder::address(bus.address.as_str())?
                .serve_at(
                    PORTAL_PATH,
                    FakeGlobalShortcuts {
                        version,
                        answer,
                        log: log.clone(),
                    },
                )?
                .serve_at(PORTAL_PATH, FakeRegistry { log: log.clone() })?
                .name(PORTAL_NAME)?
                .build()
                .await
        })
        .expect("fake portal on the private bus");
        Self { connection, log }
    }

    /// A portal that runs but offers no GlobalShortcuts interface.
    pub fn start_without_global_shortcuts(bus: &PrivateBus) -> Self {
        let log = Arc::new(Mutex::new(Log::default()));
        let connection = zbus::block_on(async {
            zbus::connection::Builder::address(bus.address.as_str())?
                .serve_at(PORTAL_PATH, FakeSettingsOnly)?
                .name(PORTAL_NAME)?
                .build()
                .await
        })
        .expect("fake portal on the private bus");
        Self { connection, log }
    }

    pub fn calls(&self) -> Vec<String> {
        self.log.lock().calls.clone()
    }

    /// The one session created so far (panics unless exactly one).
    pub fn only_session(&self) -> (String, String) {
        let log = self.log.lock();
        assert_eq!(log.sessions.len(), 1, "sessions: {:?}", log.sessions);
        let (path, owner) = log.sessions.iter().next().expect("one session");
        (path.clone(), owner.clone())
    }

    pub fn bound(&self, session: &str) -> Vec<(String, String, Option<String>)> {
        self.log
            .lock()
            .shortcuts
            .get(session)
            .cloned()
            .unwrap_or_default()
    }

    /// Emits Activated or Deactivated for `shortcut_id` to the session's owner (the portal
    /// addresses these signals to the owner, not to everyone).
    pub fn emit(&self, signal: &str, session: &str, shortcut_id: &str) {
        let owner = self.log.lock().sessions[session].clone();
        let session_path = ObjectPath::try_from(session).expect("path");
        let timestamp: u64 = 1_700_000_000_000;
        let options: HashMap<String, Value<'_>> = HashMap::new();
        zbus::block_on(self.connection.emit_signal(
            Some(owner.as_str()),
            PORTAL_PATH,
            GLOBAL_SHORTCUTS,
            signal,
            &(session_path, shortcut_id, timestamp, options),
        ))
        .expect("emit shortcut signal");
    }

    /// Emits Activated or Deactivated to everyone, as xdg-desktop-portal 1.16 does, for a
    /// session that is not the client's (another app's shortcut with the same id).
    pub fn broadcast_for_other_session(&self, signal: &str, shortcut_id: &str) {
        let other =
            ObjectPath::try_from(format!("{PORTAL_PATH}/session/1_99/other_app")).expect("path");
        let options: HashMap<String, Value<'_>> = HashMap::new();
        zbus::block_on(self.connection.emit_signal(
            None::<()>,
            PORTAL_PATH,
            GLOBAL_SHORTCUTS,
            signal,
            &(other, shortcut_id, 0u64, options),
        ))
        .expect("broadcast shortcut signal");
    }

    /// Emits ShortcutsChanged as if the user re-assigned triggers in the desktop's settings.
    pub fn emit_changed(&self, session: &str, shortcuts: &[(String, String, Option<String>)]) {
        let owner = self.log.lock().sessions[session].clone();
        let session_path = ObjectPath::try_from(session).expect("path");
        zbus::block_on(self.connection.emit_signal(
            Some(owner.as_str()),
            PORTAL_PATH,
            GLOBAL_SHORTCUTS,
            "ShortcutsChanged",
            &(session_path, shortcut_entries(shortcuts)),
        ))
        .expect("emit ShortcutsChanged");
    }

    /// Ends the session from the desktop's side (Session::Closed).
    pub fn close_session(&self, session: &str) {
        zbus::block_on(close_session(&self.connection, &self.log, session));
    }

    /// Waits until a call matching `pred` was logged.
    pub fn wait_for_call(&self, pred: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.calls().iter().any(|c| pred(c)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }
}

/// Another program on the same bus, sending signals that look like the portal's.
pub struct Intruder {
    connection: Connection,
}

impl Intruder {
    pub fn connect(bus: &PrivateBus) -> Self {
        let connection = zbus::block_on(async {
            zbus::connection::Builder::address(bus.address.as_str())?
                .build()
                .await
        })
        .expect("intruder connection");
        Self { connection }
    }

    pub fn emit_activated(&self, owner: &str, session: &str, shortcut_id: &str) {
        let session_path = ObjectPath::try_from(session).expect("path");
        let options: HashMap<String, Value<'_>> = HashMap::new();
        zbus::block_on(self.connection.emit_signal(
            Some(owner),
            PORTAL_PATH,
            GLOBAL_SHORTCUTS,
            "Activated",
            &(session_path, shortcut_id, 0u64, options),
        ))
        .expect("emit look-alike signal");
    }
}
