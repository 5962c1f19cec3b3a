//! `hardmuted`: owns the hard-mute state, drives the virtual mic through a [`backend::Backend`],
//! persists the state ([`store`]) and serves the local socket ([`server`]).

pub mod backend;
pub mod daemon;
pub mod default_input;
pub mod server;
pub mod service;
pub mod store;

pub use daemon::Daemon;
pub use server::RunningServer;
pub use store::{Settings, StateStore};

use std::io;
use std::path::Path;

/// Loads the state from `store`, starts the backend called `backend` and serves `socket`.
pub fn run(backend: &str, store: StateStore, socket: &Path) -> io::Result<RunningServer> {
    let daemon = Daemon::start(store, |options| backend::create(backend, options))
        .map_err(io::Error::other)?;
    RunningServer::start(daemon, socket)
}
