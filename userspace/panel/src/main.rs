//! `hardmute-panel`: HardMute's control panel, tray icon and global hotkey (one user-session
//! process; `hardmuted` owns the state).
//!
//! On Windows it is a GUI-subsystem program (no console window behind the panel or at logon).
#![cfg_attr(windows, windows_subsystem = "windows")]

use clap::Parser;
use hardmute_ipc::single_instance::{self as single, Claim};
use hardmute_panel::app::{App, HotkeyAgent};
use hardmute_panel::autostart;
use hardmute_panel::config::ConfigFile;
use hardmute_panel::level::{LevelFeed, SyntheticLevel};
use hardmute_panel::link::{EventSink, Link, LinkEvent};
use hardmute_panel::ui::{HardMuteTray, PanelWindow};
use slint::ComponentHandle;
use std::cell::RefCell;
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::mpsc;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "hardmute-panel",
    version,
    about = "HardMute control panel, tray icon and global hotkey. Talks to hardmuted; holds no state of its own."
)]
struct Args {
    /// Start with only the tray icon and the hotkey (the panel opens from the tray).
    #[arg(long)]
    hidden: bool,
    /// No tray icon.
    #[arg(long)]
    no_tray: bool,
    /// No global hotkey.
    #[arg(long)]
    no_hotkey: bool,
    /// Drive the level meter with a synthetic signal instead of hardmuted's level feed (for
    /// demos and for measuring what drawing the meter costs).
    #[arg(long)]
    demo_level: bool,
    /// Socket of hardmuted (default: $HARDMUTE_SOCKET, else the per-user socket).
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Write the XDG autostart entry for this user and exit.
    #[arg(long)]
    install_autostart: bool,
}

thread_local! {
    /// The running app, for events posted to the UI thread by the link's threads.
    static APP: RefCell<Option<(Rc<App>, mpsc::Receiver<LinkEvent>)>> = const { RefCell::new(None) };
}

/// A second start of the panel asked this one to show its window (on the single-instance
/// thread): done on the UI thread.
fn on_show_request() {
    let _ = slint::invoke_from_event_loop(|| {
        APP.with(|app| {
            if let Some((app, _)) = &*app.borrow() {
                app.show_window();
            }
        })
    });
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();

    if args.install_autostart {
        let exec = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "hardmute-panel".into());
        return match autostart::user_autostart_dir().and_then(|d| autostart::install(&d, &exec)) {
            Ok(path) => {
                println!("autostart entry written to {}", path.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("cannot write the autostart entry: {e}");
                ExitCode::FAILURE
            }
        };
    }

    let socket = match args
        .socket
        .map(Ok)
        .unwrap_or_else(hardmute_ipc::transport::socket_path)
    {
        Ok(socket) => socket,
        Err(e) => {
            log::error!("no socket path: {e}");
            return ExitCode::FAILURE;
        }
    };
    // One panel per user: a second start shows the first one's window and exits.
    let _single = match single::Paths::for_daemon_socket(&socket)
        .and_then(|paths| single::claim(&paths, on_show_request))
    {
        Ok(Claim::First(guard)) => Some(guard),
        Ok(Claim::Second(Ok(()))) => {
            log::info!("a HardMute panel is already running for this user: showed its window");
            return ExitCode::SUCCESS;
        }
        Ok(Claim::Second(Err(e))) => {
            log::error!("a HardMute panel is already running for this user, but {e}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // Better two panels than none.
            log::warn!("cannot check for another panel ({e}); starting anyway");
            None
        }
    };
    // The hotkey lives in hardmuted; a panel.toml of an older panel is handed over once.
    let legacy_config = ConfigFile::from_env().ok();

    let window = match PanelWindow::new() {
        Ok(window) => window,
        Err(e) => {
            log::error!("cannot open the panel window (is there a display?): {e}");
            return ExitCode::FAILURE;
        }
    };
    let tray = if args.no_tray {
        None
    } else {
        match HardMuteTray::new() {
            Ok(tray) => Some(tray),
            Err(e) => {
                log::warn!("no tray icon: {e}");
                None
            }
        }
    };

    // Link events are queued, then the UI thread is woken to handle them in order.
    let (events_tx, events_rx) = mpsc::channel::<LinkEvent>();
    let sink: EventSink = Arc::new(move |event| {
        if events_tx.send(event).is_ok() {
            let _ = slint::invoke_from_event_loop(|| {
                APP.with(|app| {
                    if let Some((app, events)) = &*app.borrow() {
                        app.pump(events);
                    }
                })
            });
        }
    });
    let link = Link::start(socket, sink);
    let hotkey = HotkeyAgent::new(!args.no_hotkey, link.sender());
    let level: Option<Box<dyn LevelFeed>> = args
        .demo_level
        .then(|| Box::new(SyntheticLevel::new()) as Box<dyn LevelFeed>);
    let app = App::new(window, tray, link, hotkey, level, legacy_config);

    if !args.hidden || app.tray.is_none() {
        if let Err(e) = app.window.show() {
            log::error!("cannot show the panel: {e}");
            return ExitCode::FAILURE;
        }
    }
    APP.with(|slot| slot.replace(Some((app.clone(), events_rx))));
    // With a tray the loop outlives the window (closing the panel hides it); without one,
    // closing the panel quits.
    let result = slint::run_event_loop();
    APP.with(|slot| slot.replace(None));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("event loop failed: {e}");
            ExitCode::FAILURE
        }
    }
}
