//! `hardmuted`: the HardMute daemon.
//!
//! On Windows it is a GUI-subsystem program: started at logon from the Startup folder, it opens
//! no console window (and so has no stderr; its log lines go nowhere there).
#![cfg_attr(windows, windows_subsystem = "windows")]

use clap::Parser;
use hardmuted::{backend, StateStore};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "hardmuted",
    version,
    about = "The HardMute daemon: owns the hard-mute state of the HardMute Microphone and serves the `hardmute` CLI, panel and tray."
)]
struct Args {
    /// Which backend hosts the virtual mic (default: the platform's real backend when compiled in, else simulated).
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(backend::AVAILABLE))]
    backend: Option<String>,
    /// Socket path (default: $HARDMUTE_SOCKET, else $XDG_RUNTIME_DIR/hardmute/hardmute.sock).
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Directory of state.toml (default: $HARDMUTE_STATE_DIR, else $HARDMUTE_CONFIG_DIR, else the
    /// per-user state dir: $XDG_STATE_HOME/hardmute, Local AppData, Application Support).
    #[arg(long)]
    config_dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    hardmuted::service::init_logging();
    let args = Args::parse();
    let backend = args
        .backend
        .unwrap_or_else(|| backend::default_name().to_owned());
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
    let store = match args
        .config_dir
        .map(|d| Ok(StateStore::in_dir(&d)))
        .unwrap_or_else(StateStore::from_env)
    {
        Ok(store) => store,
        Err(e) => {
            log::error!("no place for the state file: {e}");
            return ExitCode::FAILURE;
        }
    };

    // Install the handler before starting, so a SIGTERM during start-up still shuts down cleanly.
    let (stop_tx, stop_rx) = std::sync::mpsc::channel();
    if let Err(e) = ctrlc::set_handler(move || {
        let _ = stop_tx.send(());
    }) {
        log::error!("cannot install the SIGTERM/Ctrl-C handler: {e}");
        return ExitCode::FAILURE;
    }

    let server = match hardmuted::run(&backend, store, &socket) {
        Ok(server) => server,
        Err(e) => {
            log::error!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The node/device and the control socket are up: a `Type=notify` unit is started now.
    hardmuted::service::notify(&format!(
        "READY=1\nSTATUS=serving {} on {}",
        backend,
        socket.display()
    ));
    let _ = stop_rx.recv();
    hardmuted::service::notify("STOPPING=1");
    log::info!("stopping");
    server.shutdown();
    log::info!("stopped; socket {} removed", socket.display());
    ExitCode::SUCCESS
}
