//! The panel's connection to `hardmuted`: two background threads, so the UI thread never blocks
//! on the socket.
//!
//! - the *subscription* thread connects, subscribes (states, and the level feed where the
//!   daemon has one), and forwards what the daemon streams; when the daemon goes away it
//!   reports it and reconnects once a second;
//! - the *command* thread sends what the user asked for (mute, device, options) on its own
//!   connection and re-reads the device and listener lists after changes and every few seconds
//!   (the protocol has no listener events).
//!
//! Nothing here decides the state: the panel shows what the daemon streams back.

use hardmute_ipc::{
    ChangeSource, Client, ClientError, DaemonOption, ErrorKind, Event, InputDevice, Level,
    Listener, State,
};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// How often the subscription thread retries a daemon that is not running.
pub const RECONNECT_EVERY: Duration = Duration::from_secs(1);
/// How often the listener list is re-read while nothing else happens.
pub const LISTENERS_EVERY: Duration = Duration::from_secs(5);

/// What the UI asks the daemon for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkCommand {
    Mute(ChangeSource),
    Unmute(ChangeSource),
    Toggle(ChangeSource),
    SelectDevice(Option<String>),
    SetOption(DaemonOption),
    /// Re-read the device and listener lists.
    Refresh,
    /// Make the HardMute Microphone the OS's default input again (`hardmute protect`).
    ProtectDefault,
    /// Run `hardmute check --json` (the program given) on a thread of its own; the report
    /// comes back as [`LinkEvent::Check`].
    Check(PathBuf),
}

/// What the link tells the UI.
#[derive(Clone, Debug, PartialEq)]
pub enum LinkEvent {
    /// The daemon's current state (first after connecting, then on every change).
    State(State),
    /// Whether this daemon has a level feed (after connecting; an older one answers
    /// `unknown_request`).
    LevelFeed(bool),
    /// The physical mic's level over the daemon's last interval (sent only while live).
    Level(Level),
    /// The daemon is gone or was never there; the text says why.
    Disconnected(String),
    Devices(Vec<InputDevice>),
    Listeners(Vec<Listener>),
    /// A request failed (refused, unknown device, backend error...).
    RequestFailed(String),
    /// A guard request ([`DaemonOption::Guard`]) failed: said beside the guard's toggle, which
    /// goes back to the daemon's setting.
    GuardFailed(String),
    /// The result of a [`LinkCommand::Check`].
    Check(Result<crate::check::Report, String>),
}

/// Where events go: the app posts them to the UI thread; tests collect them.
pub type EventSink = Arc<dyn Fn(LinkEvent) + Send + Sync>;

pub struct Link {
    commands: Sender<LinkCommand>,
    stop: Arc<AtomicBool>,
}

impl Link {
    /// Starts both threads against the socket at `socket`.
    pub fn start(socket: PathBuf, sink: EventSink) -> Self {
        let (commands, command_rx) = mpsc::channel::<LinkCommand>();
        let stop = Arc::new(AtomicBool::new(false));

        {
            let socket = socket.clone();
            let sink = sink.clone();
            let stop = stop.clone();
            let refresh = commands.clone();
            thread::Builder::new()
                .name("hardmute-subscribe".into())
                .spawn(move || subscription_loop(&socket, &sink, &stop, &refresh))
                .expect("spawn the subscription thread");
        }
        {
            let stop = stop.clone();
            thread::Builder::new()
                .name("hardmute-commands".into())
                .spawn(move || {
                    let mut client: Option<Client> = None;
                    loop {
                        let command = match command_rx.recv_timeout(LISTENERS_EVERY) {
                            Ok(command) => command,
                            Err(RecvTimeoutError::Timeout) => {
                                if client.is_some() {
                                    refresh_listeners(&mut client, &socket, &sink);
                                }
                                continue;
                            }
                            Err(RecvTimeoutError::Disconnected) => return,
                        };
                        if stop.load(Ordering::Acquire) {
                            return;
                        }
                        run_command(command, &mut client, &socket, &sink);
                    }
                })
                .expect("spawn the command thread");
        }
        Self { commands, stop }
    }

    /// Queues a request; never blocks.
    pub fn send(&self, command: LinkCommand) {
        // The command thread only ends when the link is dropped.
        let _ = self.commands.send(command);
    }

    /// A sender for other threads (the hotkey handler).
    pub fn sender(&self) -> Sender<LinkCommand> {
        self.commands.clone()
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

fn subscription_loop(
    socket: &std::path::Path,
    sink: &EventSink,
    stop: &AtomicBool,
    refresh: &Sender<LinkCommand>,
) {
    let mut reported_down = false;
    while !stop.load(Ordering::Acquire) {
        match Client::connect(socket).and_then(Client::subscribe) {
            Ok((state, events)) => {
                log::info!("connected to hardmuted at {}", socket.display());
                sink(LinkEvent::State(state));
                let _ = refresh.send(LinkCommand::Refresh);
                let mut events = events;
                match events.subscribe_level() {
                    Ok(_) => sink(LinkEvent::LevelFeed(true)),
                    Err(ClientError::Daemon(e)) if e.kind == ErrorKind::UnknownRequest => {
                        log::info!("this hardmuted has no level feed");
                        sink(LinkEvent::LevelFeed(false));
                    }
                    Err(e) => log::warn!("level feed: {e}"),
                }
                while let Some(event) = events.next_event() {
                    if stop.load(Ordering::Acquire) {
                        return;
                    }
                    match event {
                        Ok(Event::State(state)) => {
                            sink(LinkEvent::State(state));
                            // Release-on-mute opens and closes the physical mic on a change.
                            let _ = refresh.send(LinkCommand::Refresh);
                        }
                        Ok(Event::Level(level)) => sink(LinkEvent::Level(level)),
                        Ok(Event::Unknown) => {}
                        Err(e) => {
                            log::warn!("subscription: {e}");
                            break;
                        }
                    }
                }
                log::warn!("hardmuted went away");
                sink(LinkEvent::Disconnected(
                    "hardmuted stopped; reconnecting…".into(),
                ));
                reported_down = true;
            }
            Err(e) => {
                if !reported_down {
                    log::warn!("{e}");
                    sink(LinkEvent::Disconnected(describe(&e)));
                    reported_down = true;
                }
            }
        }
        thread::sleep(RECONNECT_EVERY);
    }
}

fn describe(e: &ClientError) -> String {
    match e {
        ClientError::NotRunning { .. } => {
            "hardmuted is not running — start it (hardmuted); the panel reconnects by itself".into()
        }
        other => other.to_string(),
    }
}

/// Runs `f` on the command connection, connecting first if needed and retrying once on a fresh
/// connection when the old one broke (the daemon restarted).
fn with_client<T>(
    client: &mut Option<Client>,
    socket: &std::path::Path,
    f: impl Fn(&mut Client) -> Result<T, ClientError>,
) -> Result<T, ClientError> {
    for attempt in 0..2 {
        if client.is_none() {
            *client = Some(Client::connect(socket)?);
        }
        let result = f(client.as_mut().expect("connected above"));
        match result {
            Err(ClientError::Io(_)) | Err(ClientError::Protocol(_)) if attempt == 0 => {
                *client = None;
            }
            other => return other,
        }
    }
    unreachable!("the second attempt always returns")
}

fn run_command(
    command: LinkCommand,
    client: &mut Option<Client>,
    socket: &std::path::Path,
    sink: &EventSink,
) {
    let result = match &command {
        LinkCommand::Mute(source) => with_client(client, socket, |c| c.mute(*source)).map(drop),
        LinkCommand::Unmute(source) => with_client(client, socket, |c| c.unmute(*source)).map(drop),
        LinkCommand::Toggle(source) => with_client(client, socket, |c| c.toggle(*source)).map(drop),
        LinkCommand::SelectDevice(device) => {
            with_client(client, socket, |c| c.select_device(device.as_deref())).map(drop)
        }
        LinkCommand::SetOption(option) => {
            with_client(client, socket, |c| c.set_option(option.clone())).map(drop)
        }
        LinkCommand::ProtectDefault => {
            with_client(client, socket, |c| c.protect_default()).map(drop)
        }
        LinkCommand::Check(program) => {
            // Seconds long on Linux (it records through each route): never on this thread,
            // which carries the mute requests.
            let (program, socket, report_to) = (program.clone(), socket.to_owned(), sink.clone());
            let spawned = thread::Builder::new()
                .name("hardmute-check".into())
                .spawn(move || report_to(LinkEvent::Check(crate::check::run(&program, &socket))));
            if let Err(e) = spawned {
                sink(LinkEvent::Check(Err(format!(
                    "cannot start the check: {e}"
                ))));
            }
            Ok(())
        }
        LinkCommand::Refresh => {
            match with_client(client, socket, |c| c.devices()) {
                Ok(devices) => sink(LinkEvent::Devices(devices)),
                Err(e) => log::debug!("devices: {e}"),
            }
            refresh_listeners(client, socket, sink);
            Ok(())
        }
    };
    if let Err(e) = result {
        log::warn!("{command:?} failed: {e}");
        sink(match command {
            LinkCommand::SetOption(DaemonOption::Guard(_)) => LinkEvent::GuardFailed(e.to_string()),
            _ => LinkEvent::RequestFailed(e.to_string()),
        });
    }
}

fn refresh_listeners(client: &mut Option<Client>, socket: &std::path::Path, sink: &EventSink) {
    match with_client(client, socket, |c| c.listeners()) {
        Ok(listeners) => sink(LinkEvent::Listeners(listeners)),
        Err(e) => {
            *client = None;
            log::debug!("listeners: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn collect() -> (EventSink, Arc<Mutex<Vec<LinkEvent>>>) {
        let events = Arc::new(Mutex::new(Vec::new()));
        let seen = events.clone();
        (Arc::new(move |e| seen.lock().unwrap().push(e)), events)
    }

    #[test]
    fn a_failed_guard_request_is_reported_as_the_guards_and_other_failures_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("absent.sock");
        let (sink, events) = collect();
        let mut client = None;
        run_command(
            LinkCommand::SetOption(DaemonOption::Guard(true)),
            &mut client,
            &socket,
            &sink,
        );
        run_command(
            LinkCommand::SetOption(DaemonOption::StartMuted(true)),
            &mut client,
            &socket,
            &sink,
        );
        let events = events.lock().unwrap();
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(
            matches!(&events[0], LinkEvent::GuardFailed(why) if why.contains("not running")),
            "{events:?}"
        );
        assert!(
            matches!(&events[1], LinkEvent::RequestFailed(_)),
            "{events:?}"
        );
    }
}
