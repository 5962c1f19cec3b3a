//! The portal conversation (Linux): probe, session, binding, and the event pump on its own
//! thread.
//!
//! Everything async runs on one dedicated thread under `zbus::block_on`; zbus (async-io
//! flavour) drives the socket from its own internal executor thread, so no runtime is needed.

use crate::{
    to_portal_trigger, BoundShortcut, PortalConfig, PortalError, PortalInfo, PortalStep, Refusal,
    ShortcutAction, ShortcutEvent,
};
use ashpd::desktop::global_shortcuts::{
    Activated, BindShortcutsOptions, Deactivated, GlobalShortcuts, ListShortcutsOptions,
    NewShortcut, Shortcut, ShortcutsChanged,
};
use ashpd::desktop::{CreateSessionOptions, ResponseError, Session};
use futures_channel::mpsc as async_mpsc;
use futures_util::future::{self, Either};
use futures_util::stream::{self, LocalBoxStream, StreamExt};
use std::pin::pin;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;
use zbus::names::InterfaceName;
use zbus::zvariant::OwnedObjectPath;

const PORTAL_DESTINATION: &str = "org.freedesktop.portal.Desktop";
const PORTAL_PATH: &str = "/org/freedesktop/portal/desktop";
const GLOBAL_SHORTCUTS: &str = "org.freedesktop.portal.GlobalShortcuts";
/// Any single D-Bus call that does not wait for the user (the binding dialog is waited for on a
/// signal, not a call, so this does not limit it). D-Bus's own default.
const CALL_TIMEOUT: Duration = Duration::from_secs(25);
/// How long dropping [`PortalShortcuts`] waits for the portal to acknowledge `Session.Close`.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether a portal with GlobalShortcuts answers on the session bus, and its version. Blocks
/// for one D-Bus round trip (which may D-Bus-activate xdg-desktop-portal, a second or two).
pub fn probe() -> Result<PortalInfo, PortalError> {
    zbus::block_on(probe_async(None))
}

/// [`probe`] on the bus at `bus_address` instead of the session bus.
pub fn probe_on(bus_address: &str) -> Result<PortalInfo, PortalError> {
    zbus::block_on(probe_async(Some(bus_address)))
}

async fn probe_async(bus_address: Option<&str>) -> Result<PortalInfo, PortalError> {
    let connection = connect(bus_address).await?;
    let version = global_shortcuts_version(&connection).await?;
    Ok(PortalInfo { version })
}

async fn connect(bus_address: Option<&str>) -> Result<zbus::Connection, PortalError> {
    let no_bus = |e: zbus::Error| PortalError::NoSessionBus(e.to_string());
    let builder = match bus_address {
        Some(address) => zbus::connection::Builder::address(address).map_err(no_bus)?,
        None => zbus::connection::Builder::session().map_err(no_bus)?,
    };
    builder
        .method_timeout(CALL_TIMEOUT)
        .build()
        .await
        .map_err(no_bus)
}

/// Reads the interface's `version` property ourselves: ashpd treats a missing portal service as
/// "version 1" and only notices later, while this call tells the two absences apart.
async fn global_shortcuts_version(connection: &zbus::Connection) -> Result<u32, PortalError> {
    let properties = zbus::fdo::PropertiesProxy::builder(connection)
        .destination(PORTAL_DESTINATION)
        .and_then(|b| b.path(PORTAL_PATH))
        .map_err(|e| PortalError::Portal(e.to_string()))?
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .map_err(|e| PortalError::Portal(e.to_string()))?;
    let value = properties
        .get(
            InterfaceName::from_static_str_unchecked(GLOBAL_SHORTCUTS),
            "version",
        )
        .await
        .map_err(|e| classify_probe_error(&e))?;
    u32::try_from(value)
        .map_err(|e| PortalError::Portal(format!("GlobalShortcuts version is not a u32: {e}")))
}

/// Which absence a failed `Properties.Get(GlobalShortcuts, "version")` means.
fn classify_probe_error(error: &zbus::fdo::Error) -> PortalError {
    use zbus::fdo::Error as E;
    match error {
        // Nobody owns org.freedesktop.portal.Desktop and nothing can be activated for it.
        E::ServiceUnknown(_)
        | E::NameHasNoOwner(_)
        | E::SpawnChildExited(_)
        | E::SpawnExecFailed(_)
        | E::SpawnFailed(_)
        | E::SpawnServiceNotFound(_) => PortalError::NoPortal,
        // The portal answers but has no such interface: GDBus (xdg-desktop-portal) says
        // InvalidArgs "No such interface", zbus-based services say UnknownInterface.
        E::InvalidArgs(_)
        | E::UnknownInterface(_)
        | E::UnknownProperty(_)
        | E::UnknownObject(_) => PortalError::NoGlobalShortcuts,
        other => PortalError::Portal(other.to_string()),
    }
}

fn refusal(step: PortalStep, error: ashpd::Error) -> PortalError {
    match error {
        ashpd::Error::Response(ResponseError::Cancelled) => {
            PortalError::Refused(step, Refusal::Cancelled)
        }
        ashpd::Error::Response(ResponseError::Other) => PortalError::Refused(step, Refusal::Other),
        other => PortalError::Portal(format!("{step:?}: {other}")),
    }
}

fn bound_from(shortcuts: &[Shortcut]) -> Vec<BoundShortcut> {
    shortcuts
        .iter()
        .filter_map(|s| {
            ShortcutAction::from_id(s.id()).map(|action| BoundShortcut {
                action,
                trigger_description: s.trigger_description().to_owned(),
            })
        })
        .collect()
}

/// The global mute shortcuts, bound through the portal. Events arrive on the callback given to
/// [`PortalShortcuts::start`] until this is dropped (which closes the portal session) or the
/// desktop ends the session ([`ShortcutEvent::Closed`]).
pub struct PortalShortcuts {
    version: u32,
    bound: Vec<BoundShortcut>,
    commands: Option<async_mpsc::UnboundedSender<Command>>,
    worker: Option<JoinHandle<()>>,
}

/// Requests from the handle to the portal thread.
enum Command {
    List(mpsc::Sender<Result<Vec<BoundShortcut>, PortalError>>),
}

impl std::fmt::Debug for PortalShortcuts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortalShortcuts")
            .field("version", &self.version)
            .field("bound", &self.bound)
            .finish_non_exhaustive()
    }
}

/// What the portal thread reports once binding is over.
type Ready = Result<(u32, Vec<BoundShortcut>), PortalError>;

impl PortalShortcuts {
    /// Binds "toggle-mute" (with `trigger`, our syntax such as `Ctrl+Alt+M`, as its preferred
    /// trigger) and "push-to-talk" (no preference) on the session bus, then calls `on_event`
    /// from the portal thread for every press and release.
    ///
    /// Blocks until the desktop has answered the binding, which may mean the user confirming a
    /// dialog: call it off the UI thread. The same as
    /// `start_with(PortalConfig::new(trigger), on_event)`.
    pub fn start(
        trigger: &str,
        on_event: impl Fn(ShortcutEvent) + Send + 'static,
    ) -> Result<Self, PortalError> {
        Self::start_with(PortalConfig::new(trigger), on_event)
    }

    /// [`PortalShortcuts::start`] with every choice spelled out.
    pub fn start_with(
        config: PortalConfig,
        on_event: impl Fn(ShortcutEvent) + Send + 'static,
    ) -> Result<Self, PortalError> {
        let preferred = config
            .trigger
            .as_deref()
            .map(to_portal_trigger)
            .transpose()?;
        let (ready_tx, ready_rx) = mpsc::channel::<Ready>();
        let (commands_tx, commands_rx) = async_mpsc::unbounded::<Command>();
        let worker = thread::Builder::new()
            .name("hardmute-portal".into())
            .spawn(move || {
                zbus::block_on(run(config, preferred, ready_tx, commands_rx, on_event));
            })
            .map_err(|e| PortalError::Portal(format!("cannot start the portal thread: {e}")))?;
        match ready_rx.recv() {
            Ok(Ok((version, bound))) => Ok(Self {
                version,
                bound,
                commands: Some(commands_tx),
                worker: Some(worker),
            }),
            Ok(Err(e)) => {
                let _ = worker.join();
                Err(e)
            }
            Err(_) => {
                let _ = worker.join();
                Err(PortalError::Portal(
                    "the portal thread ended without an answer".into(),
                ))
            }
        }
    }

    /// The portal interface's version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The shortcuts as the desktop bound them (it may have bound fewer than asked).
    pub fn bound(&self) -> &[BoundShortcut] {
        &self.bound
    }

    /// Asks the portal which shortcuts this session has now (`ListShortcuts`), e.g. to show the
    /// trigger the user picked in the desktop's settings. Blocks for a portal round trip.
    pub fn list(&self) -> Result<Vec<BoundShortcut>, PortalError> {
        let (reply_tx, reply_rx) = mpsc::channel();
        self.commands
            .as_ref()
            .and_then(|commands| commands.unbounded_send(Command::List(reply_tx)).ok())
            .ok_or(PortalError::SessionClosed)?;
        match reply_rx.recv_timeout(CALL_TIMEOUT + CLOSE_TIMEOUT) {
            Ok(reply) => reply,
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(PortalError::SessionClosed),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(PortalError::Portal(
                "the portal did not answer ListShortcuts".into(),
            )),
        }
    }

    /// Closes the portal session and waits for the portal thread (at most a couple of seconds).
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        // Dropping the sender ends the command stream: the thread closes the session and ends.
        self.commands.take();
        if let Some(worker) = self.worker.take() {
            // Dropped from inside the event callback: the thread ends by itself once the
            // callback returns (its command stream is closed); joining would wait for itself.
            if worker.thread().id() == thread::current().id() {
                return;
            }
            if worker.join().is_err() {
                log::warn!("the portal shortcut thread panicked");
            }
        }
    }
}

impl Drop for PortalShortcuts {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// Signals the bound session can send us.
enum Incoming {
    Activated(String),
    Deactivated(String),
    Changed(Vec<BoundShortcut>),
    Closed,
}

/// A session created, not yet bound.
struct Opened {
    version: u32,
    portal: GlobalShortcuts,
    session: Session<GlobalShortcuts>,
    /// Activated / Deactivated / ShortcutsChanged with their session handle, subscribed before
    /// binding so that nothing sent right after the answer is missed.
    signals: LocalBoxStream<'static, (OwnedObjectPath, Incoming)>,
}

async fn run(
    config: PortalConfig,
    preferred: Option<String>,
    ready: mpsc::Sender<Ready>,
    mut commands: async_mpsc::UnboundedReceiver<Command>,
    on_event: impl Fn(ShortcutEvent),
) {
    let opened = match open(&config).await {
        Ok(opened) => opened,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let Opened {
        version,
        portal,
        session,
        signals,
    } = opened;
    let mut closed = match session.receive_closed().await {
        Ok(closed) => closed.map(|_| Incoming::Closed).boxed_local(),
        Err(e) => {
            let _ = ready.send(Err(PortalError::Portal(format!(
                "subscribing to Session.Closed: {e}"
            ))));
            return;
        }
    };
    let shortcuts = match bind(
        &portal,
        &session,
        &mut closed,
        &config,
        preferred.as_deref(),
    )
    .await
    {
        Ok(shortcuts) => shortcuts,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    // Older portals (xdg-desktop-portal 1.16, Debian 12) broadcast Activated and Deactivated to
    // every client: another app's "push-to-talk" must not unmute us, so keep our session's only.
    let ours = match session_path(&session) {
        Ok(path) => path,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    if ready.send(Ok((version, shortcuts))).is_err() {
        return;
    }
    let signals = signals.filter_map(move |(session, signal)| {
        let mine = session == ours;
        if !mine {
            log::debug!("ignored a shortcut signal for another session ({session})");
        }
        future::ready(mine.then_some(signal))
    });
    let mut incoming = stream::select(signals, closed);
    loop {
        match future::select(commands.next(), incoming.next()).await {
            Either::Left((Some(Command::List(reply)), _)) => {
                let _ = reply.send(list(&portal, &session).await);
            }
            // The handle was dropped or stopped: end the session ourselves.
            Either::Left((None, _)) => {
                let close = pin!(session.close());
                let timeout = pin!(async_io::Timer::after(CLOSE_TIMEOUT));
                match future::select(close, timeout).await {
                    Either::Left((Ok(()), _)) => {}
                    Either::Left((Err(e), _)) => log::warn!("closing the portal session: {e}"),
                    Either::Right(_) => log::warn!("the portal did not answer Session.Close"),
                }
                return;
            }
            Either::Right((Some(Incoming::Closed) | None, _)) => {
                on_event(ShortcutEvent::Closed);
                return;
            }
            Either::Right((Some(signal), _)) => {
                let event = match signal {
                    Incoming::Activated(id) => {
                        ShortcutAction::from_id(&id).map(ShortcutEvent::Activated)
                    }
                    Incoming::Deactivated(id) => {
                        ShortcutAction::from_id(&id).map(ShortcutEvent::Deactivated)
                    }
                    Incoming::Changed(shortcuts) => Some(ShortcutEvent::Changed(shortcuts)),
                    Incoming::Closed => None,
                };
                match event {
                    Some(event) => on_event(event),
                    None => log::debug!("ignored a portal signal for a shortcut id we never bound"),
                }
            }
        }
    }
}

async fn list(
    portal: &GlobalShortcuts,
    session: &Session<GlobalShortcuts>,
) -> Result<Vec<BoundShortcut>, PortalError> {
    let listed = portal
        .list_shortcuts(session, ListShortcutsOptions::default())
        .await
        .and_then(|request| request.response())
        .map_err(|e| PortalError::Portal(format!("ListShortcuts: {e}")))?;
    Ok(bound_from(listed.shortcuts()))
}

/// Connects, checks the portal, subscribes to the shortcut signals and creates the session.
async fn open(config: &PortalConfig) -> Result<Opened, PortalError> {
    let connection = connect(config.bus_address.as_deref()).await?;
    if let Some(app_id) = &config.app_id {
        // Must come before the first portal request of this connection.
        match app_id.parse::<ashpd::AppID>() {
            Ok(id) => {
                if let Err(e) =
                    ashpd::register_host_app_with_connection(connection.clone(), id).await
                {
                    log::warn!("could not register app id {app_id:?} with the portal: {e}");
                }
            }
            Err(_) => log::warn!("{app_id:?} is not a valid application id; not registered"),
        }
    }
    let version = global_shortcuts_version(&connection).await?;
    let portal = GlobalShortcuts::with_connection(connection.clone())
        .await
        .map_err(|e| PortalError::Portal(e.to_string()))?;

    let signals = shortcut_signals(&connection).await?;
    // CreateSession involves no dialog: a portal that does not answer it is stuck, and the
    // caller should not wait forever.
    let session = {
        let create = pin!(portal.create_session(CreateSessionOptions::default()));
        match future::select(create, pin!(async_io::Timer::after(CALL_TIMEOUT))).await {
            Either::Left((created, _)) => {
                created.map_err(|e| refusal(PortalStep::CreateSession, e))?
            }
            Either::Right(_) => {
                return Err(PortalError::Portal(
                    "the portal did not answer CreateSession".into(),
                ))
            }
        }
    };
    Ok(Opened {
        version,
        portal,
        session,
        signals,
    })
}

/// Activated, Deactivated and ShortcutsChanged as ONE stream, in the order the portal sent
/// them. (Separate streams per signal, merged, may hand a release over before its press: a
/// push-to-talk would then stay live.) Only the portal's current owner is listened to, so
/// another program on the bus cannot press the shortcut by sending look-alike signals.
async fn shortcut_signals(
    connection: &zbus::Connection,
) -> Result<LocalBoxStream<'static, (OwnedObjectPath, Incoming)>, PortalError> {
    let failed = |e: zbus::Error| PortalError::Portal(format!("subscribing to signals: {e}"));
    let owner = zbus::fdo::DBusProxy::new(connection)
        .await
        .map_err(failed)?
        .get_name_owner(zbus::names::BusName::WellKnown(
            zbus::names::WellKnownName::from_static_str_unchecked(PORTAL_DESTINATION),
        ))
        .await
        .map_err(|_| PortalError::NoPortal)?;
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .sender(owner.as_ref())
        .and_then(|b| b.interface(GLOBAL_SHORTCUTS))
        .and_then(|b| b.path(PORTAL_PATH))
        .map_err(failed)?
        .build();
    let messages = zbus::MessageStream::for_match_rule(rule, connection, None)
        .await
        .map_err(failed)?;
    Ok(messages
        .filter_map(|message| future::ready(message.ok().and_then(|m| decode_signal(&m))))
        .boxed_local())
}

/// A shortcut signal and the session it is for.
fn decode_signal(message: &zbus::Message) -> Option<(OwnedObjectPath, Incoming)> {
    let header = message.header();
    let body = message.body();
    match header.member()?.as_str() {
        "Activated" => body.deserialize::<Activated>().ok().map(|a| {
            let id = a.shortcut_id().to_owned();
            (a.session_handle().into(), Incoming::Activated(id))
        }),
        "Deactivated" => body.deserialize::<Deactivated>().ok().map(|d| {
            let id = d.shortcut_id().to_owned();
            (d.session_handle().into(), Incoming::Deactivated(id))
        }),
        "ShortcutsChanged" => body.deserialize::<ShortcutsChanged>().ok().map(|c| {
            let shortcuts = bound_from(c.shortcuts());
            (c.session_handle().into(), Incoming::Changed(shortcuts))
        }),
        _ => None,
    }
}

/// The object path of an ashpd session (ashpd keeps it private; its public D-Bus encoding,
/// a single `o`, carries it).
fn session_path(session: &Session<GlobalShortcuts>) -> Result<OwnedObjectPath, PortalError> {
    use zbus::zvariant::{serialized::Context, to_bytes, LE};
    let bad = |e: zbus::zvariant::Error| PortalError::Portal(format!("session handle: {e}"));
    let encoded = to_bytes(Context::new_dbus(LE, 0), session).map_err(bad)?;
    let (path, _): (OwnedObjectPath, usize) = encoded.deserialize().map_err(bad)?;
    Ok(path)
}

/// Asks for the two shortcuts and waits for the desktop's answer (possibly a user dialog).
async fn bind(
    portal: &GlobalShortcuts,
    session: &Session<GlobalShortcuts>,
    closed: &mut LocalBoxStream<'_, Incoming>,
    config: &PortalConfig,
    preferred: Option<&str>,
) -> Result<Vec<BoundShortcut>, PortalError> {
    let wanted: Vec<NewShortcut> = ShortcutAction::ALL
        .into_iter()
        .map(|action| {
            let shortcut = NewShortcut::new(action.id(), action.description());
            if action == config.trigger_for {
                shortcut.preferred_trigger(preferred)
            } else {
                shortcut
            }
        })
        .collect();
    let request =
        pin!(portal.bind_shortcuts(session, &wanted, None, BindShortcutsOptions::default()));
    // The desktop may end the session instead of answering (e.g. it is shutting down).
    let answer = match future::select(request, closed.next()).await {
        Either::Left((answer, _)) => answer,
        Either::Right(_) => return Err(PortalError::SessionClosed),
    };
    let response = answer
        .and_then(|request| request.response())
        .map_err(|e| refusal(PortalStep::BindShortcuts, e))?;
    Ok(bound_from(response.shortcuts()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use zbus::fdo::Error as E;

    #[test]
    fn probe_errors_tell_a_missing_portal_from_a_missing_interface() {
        for missing in [
            E::ServiceUnknown("org.freedesktop.portal.Desktop".into()),
            E::NameHasNoOwner("org.freedesktop.portal.Desktop".into()),
            E::SpawnChildExited("xdg-desktop-portal exited".into()),
        ] {
            assert_eq!(classify_probe_error(&missing), PortalError::NoPortal);
        }
        for no_interface in [
            // What xdg-desktop-portal (GDBus) answers for an interface it does not export.
            E::InvalidArgs("No such interface “org.freedesktop.portal.GlobalShortcuts”".into()),
            E::UnknownInterface("Unknown interface".into()),
        ] {
            assert_eq!(
                classify_probe_error(&no_interface),
                PortalError::NoGlobalShortcuts
            );
        }
        assert!(matches!(
            classify_probe_error(&E::AccessDenied("no".into())),
            PortalError::Portal(m) if m.contains("no")
        ));
    }

    #[test]
    fn response_codes_map_to_typed_refusals() {
        assert_eq!(
            refusal(
                PortalStep::BindShortcuts,
                ashpd::Error::Response(ResponseError::Cancelled)
            ),
            PortalError::Refused(PortalStep::BindShortcuts, Refusal::Cancelled)
        );
        assert_eq!(
            refusal(
                PortalStep::CreateSession,
                ashpd::Error::Response(ResponseError::Other)
            ),
            PortalError::Refused(PortalStep::CreateSession, Refusal::Other)
        );
        assert!(matches!(
            refusal(PortalStep::BindShortcuts, ashpd::Error::NoResponse),
            PortalError::Portal(_)
        ));
    }
}
