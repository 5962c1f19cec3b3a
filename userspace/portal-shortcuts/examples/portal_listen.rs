//! Binds HardMute's two shortcuts through the desktop's portal and prints every event: the
//! manual check on a real Wayland desktop (KDE Plasma, GNOME 48+), which the tests cannot make.
//!
//! ```text
//! cargo run -p hardmute-portal-shortcuts --example portal_listen -- "Ctrl+Alt+M"
//! ```
//!
//! The desktop should ask to confirm the shortcuts; then press and release them. Ctrl+C ends it.

use hardmute_portal_shortcuts::{
    is_wayland_session, probe, PortalShortcuts, ShortcutEvent, ShortcutRequests,
};
use std::sync::mpsc;

fn main() {
    let trigger = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "Ctrl+Alt+M".into());
    println!("Wayland session: {}", is_wayland_session());
    match probe() {
        Ok(info) => println!("GlobalShortcuts portal, version {}", info.version),
        Err(e) => {
            eprintln!("no portal shortcuts: {e}");
            std::process::exit(1);
        }
    }
    let (tx, rx) = mpsc::channel();
    let shortcuts = match PortalShortcuts::start(&trigger, move |event| {
        let _ = tx.send(event);
    }) {
        Ok(shortcuts) => shortcuts,
        Err(e) => {
            eprintln!("binding failed: {e}");
            std::process::exit(1);
        }
    };
    for bound in shortcuts.bound() {
        println!(
            "bound {:?}: {:?}",
            bound.action.id(),
            bound.trigger_description
        );
    }
    let mut requests = ShortcutRequests::new();
    for event in rx {
        println!("{event:?} -> {:?}", requests.on_event(&event));
        if event == ShortcutEvent::Closed {
            break;
        }
    }
}
