//! A stand-in portal BACKEND (org.freedesktop.impl.portal.GlobalShortcuts and .Session, what
//! xdg-desktop-portal-kde / -gnome implement), for running the REAL xdg-desktop-portal frontend
//! between our client and it. Written from the backend interface documentation.

#![allow(dead_code)]

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use zbus::object_server::SignalEmitter;
use zbus::zvariant::{ObjectPath, OwnedObjectPath, OwnedValue, Value};
use zbus::{interface, Connection};

pub const BACKEND_NAME: &str = "org.freedesktop.impl.portal.desktop.hardmutetest";
pub const BACKEND_DESKTOP: &str = "hardmutetest";
const PATH: &str = "/org/freedesktop/portal/desktop";

/// What the backend saw, in order.
#[derive(Default)]
pub struct BackendLog {
    pub calls: Vec<String>,
    /// Session handle -> the shortcuts asked (id, preferred trigger).
    pub sessions: HashMap<String, Vec<(String, Option<String>)>>,
}

type Entries = Vec<(String, HashMap<String, Value<'static>>)>;

fn entries(shortcuts: &[(String, Option<String>)]) -> Entries {
    shortcuts
        .iter()
        .map(|(id, trigger)| {
            let mut info: HashMap<String, Value<'static>> = HashMap::new();
            info.insert("description".into(), Value::from(format!("desc {id}")));
            info.insert(
                "trigger_description".into(),
                Value::from(trigger.clone().unwrap_or_default()),
            );
            (id.clone(), info)
        })
        .collect()
}

fn results_with(shortcuts: &[(String, Option<String>)]) -> HashMap<String, OwnedValue> {
    let mut results = HashMap::new();
    results.insert(
        "shortcuts".to_owned(),
        OwnedValue::try_from(Value::from(entries(shortcuts))).expect("owned"),
    );
    results
}

struct ImplSession {
    log: Arc<Mutex<BackendLog>>,
}

#[interface(name = "org.freedesktop.impl.portal.Session")]
impl ImplSession {
    async fn close(&self, #[zbus(header)] header: zbus::message::Header<'_>) {
        let path = header.path().map(|p| p.to_string()).unwrap_or_default();
        self.log.lock().calls.push(format!("impl close {path}"));
    }

    #[zbus(signal)]
    async fn closed(emitter: &SignalEmitter<'_>) -> zbus::Result<()>;
}

struct ImplGlobalShortcuts {
    /// Response code for BindShortcuts (0 = bind, 1 = cancelled, 2 = other).
    bind_response: u32,
    log: Arc<Mutex<BackendLog>>,
}

#[interface(name = "org.freedesktop.impl.portal.GlobalShortcuts")]
impl ImplGlobalShortcuts {
    #[zbus(property, name = "version")]
    fn version(&self) -> u32 {
        1
    }

    async fn create_session(
        &self,
        handle: ObjectPath<'_>,
        session_handle: ObjectPath<'_>,
        app_id: String,
        _options: HashMap<String, OwnedValue>,
        #[zbus(connection)] connection: &Connection,
    ) -> zbus::fdo::Result<(u32, HashMap<String, OwnedValue>)> {
        {
            let mut log = self.log.lock();
            log.calls.push(format!(
                "impl create_session {session_handle} app={app_id:?} {handle}"
            ));
            log.sessions.insert(session_handle.to_string(), Vec::new());
        }
        connection
            .object_server()
            .at(
                session_handle.to_owned(),
                ImplSession {
                    log: self.log.clone(),
                },
            )
            .await?;
        // xdg-desktop-portal 1.16 copies "shortcuts" from these results into its Response.
        Ok((0, results_with(&[])))
    }

    async fn bind_shortcuts(
        &self,
        _handle: ObjectPath<'_>,
        session_handle: ObjectPath<'_>,
        shortcuts: Vec<(String, HashMap<String, OwnedValue>)>,
        parent_window: String,
        _options: HashMap<String, OwnedValue>,
    ) -> zbus::fdo::Result<(u32, HashMap<String, OwnedValue>)> {
        let asked: Vec<(String, Option<String>)> = shortcuts
            .iter()
            .map(|(id, info)| {
                let trigger = info
                    .get("preferred_trigger")
                    .and_then(|v| v.downcast_ref::<&str>().ok())
                    .map(str::to_owned);
                (id.clone(), trigger)
            })
            .collect();
        let mut log = self.log.lock();
        log.calls.push(format!(
            "impl bind {session_handle} parent={parent_window:?} {asked:?}"
        ));
        if self.bind_response != 0 {
            return Ok((self.bind_response, HashMap::new()));
        }
        log.sessions
            .insert(session_handle.to_string(), asked.clone());
        Ok((0, results_with(&asked)))
    }

    async fn list_shortcuts(
        &self,
        _handle: ObjectPath<'_>,
        session_handle: ObjectPath<'_>,
    ) -> zbus::fdo::Result<(u32, HashMap<String, OwnedValue>)> {
        let mut log = self.log.lock();
        log.calls.push(format!("impl list {session_handle}"));
        let bound = log
            .sessions
            .get(session_handle.as_str())
            .cloned()
            .unwrap_or_default();
        Ok((0, results_with(&bound)))
    }
}

pub struct FakeBackend {
    pub connection: Connection,
    pub log: Arc<Mutex<BackendLog>>,
}

impl FakeBackend {
    pub fn start(address: &str, bind_response: u32) -> Self {
        let log = Arc::new(Mutex::new(BackendLog::default()));
        let connection = zbus::block_on(async {
            zbus::connection::Builder::address(address)?
                .serve_at(
                    PATH,
                    ImplGlobalShortcuts {
                        bind_response,
                        log: log.clone(),
                    },
                )?
                .name(BACKEND_NAME)?
                .build()
                .await
        })
        .expect("fake backend on the private bus");
        Self { connection, log }
    }

    /// The `.portal` file xdg-desktop-portal reads to find this backend.
    pub fn portal_file() -> String {
        format!(
            "[portal]\nDBusName={BACKEND_NAME}\nInterfaces=org.freedesktop.impl.portal.GlobalShortcuts;\nUseIn={BACKEND_DESKTOP}\n"
        )
    }

    pub fn calls(&self) -> Vec<String> {
        self.log.lock().calls.clone()
    }

    pub fn only_session(&self) -> String {
        let log = self.log.lock();
        assert_eq!(log.sessions.len(), 1, "sessions: {:?}", log.calls);
        log.sessions.keys().next().expect("one").clone()
    }

    /// A key press or release, as a desktop backend reports it to the frontend.
    pub fn emit(&self, signal: &str, session: &str, shortcut_id: &str) {
        let session = ObjectPath::try_from(session).expect("path");
        let options: HashMap<String, Value<'_>> = HashMap::new();
        zbus::block_on(self.connection.emit_signal(
            None::<()>,
            PATH,
            "org.freedesktop.impl.portal.GlobalShortcuts",
            signal,
            &(session, shortcut_id, 0u64, options),
        ))
        .expect("emit backend signal");
    }

    /// The desktop ends the session (impl Session::Closed).
    pub fn close_session(&self, session: &str) {
        let path = OwnedObjectPath::try_from(session.to_owned()).expect("path");
        let emitter = SignalEmitter::new(&self.connection, path).expect("emitter");
        zbus::block_on(ImplSession::closed(&emitter)).expect("emit impl Closed");
    }
}
