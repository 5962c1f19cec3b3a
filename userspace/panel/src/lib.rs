//! `hardmute-panel`: the user-session agent of HardMute — control panel, tray icon and global
//! hotkey in one process. It holds no mute state of its own: every change is a request to
//! `hardmuted`, and everything shown comes from the daemon's answers and state events.
//!
//! - [`link`]: the connection to the daemon (a command thread and a subscription thread);
//! - [`view`]: daemon state -> what the window and tray show (pure, tested without a display);
//! - [`hotkey`]: hotkey parsing, toggle / push-to-talk, and the platform registration;
//! - [`config`]: the panel's own settings (`panel.toml`: hotkey and its mode);
//! - [`level`]: the local-only input-level feed for the meter;
//! - [`app`]: wires the Slint components to the link;
//! - [`autostart`]: the XDG autostart entry;
//! - [`check`]: "Check protection" (runs `hardmute check --json`);
//! - [`single`]: one panel per user (a second start shows the first one's window).

pub mod app;
pub mod autostart;
pub mod check;
pub mod config;
pub mod hotkey;
pub mod level;
pub mod link;
pub mod view;

/// The Slint components generated from `ui/panel.slint`.
pub mod ui {
    slint::include_modules!();
}
