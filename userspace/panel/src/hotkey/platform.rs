//! The OS side of the hotkey: a global grab through the `global-hotkey` crate (X11 on Linux and
//! the BSDs, RegisterHotKey on Windows, Carbon/AppKit on macOS), and the check the crate does not
//! do itself: on X11 it reports success even when no display can be reached, and then no key
//! ever arrives. Platform differences stay in [`session`].

use super::{HotkeySpec, KeyEdge};
use global_hotkey::{GlobalHotKeyEvent, GlobalHotKeyManager, HotKeyState};

/// Whether a global grab can work in this session, and if not, why (shown in the panel).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Availability {
    Ready,
    /// Works, with a caveat for the user (e.g. XWayland: only while an X11 window has focus).
    Limited(String),
    Unavailable(String),
}

impl Availability {
    pub fn can_grab(&self) -> bool {
        !matches!(self, Self::Unavailable(_))
    }
}

/// Where a desktop without a grab can still toggle: bind this command as a desktop shortcut.
pub const SHORTCUT_COMMAND: &str = "hardmute toggle";

/// Checks this session (environment + display socket).
pub fn availability() -> Availability {
    session::availability(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
}

#[cfg(all(unix, not(target_os = "macos")))]
mod session {
    use super::{Availability, SHORTCUT_COMMAND};
    use std::os::unix::net::UnixStream;
    use std::path::PathBuf;

    /// The local socket of an X display such as `:77` or `:0.0`; `None` for a remote display
    /// (`host:0`), which only the X library can judge.
    pub(super) fn local_display_socket(display: &str) -> Option<PathBuf> {
        let number = display.strip_prefix(':')?;
        let number = number.split('.').next()?;
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(PathBuf::from(format!("/tmp/.X11-unix/X{number}")))
    }

    pub(super) fn availability(env: impl Fn(&str) -> Option<String>) -> Availability {
        let wayland = env("WAYLAND_DISPLAY").is_some()
            || env("XDG_SESSION_TYPE").as_deref() == Some("wayland");
        let Some(display) = env("DISPLAY") else {
            return Availability::Unavailable(if wayland {
                format!(
                    "Wayland session without XWayland: no global hotkey here. Bind `{SHORTCUT_COMMAND}` as a keyboard shortcut in your desktop's settings."
                )
            } else {
                format!(
                    "no display (DISPLAY is not set): no global hotkey. Use `{SHORTCUT_COMMAND}` instead."
                )
            });
        };
        if let Some(socket) = local_display_socket(&display) {
            if let Err(e) = UnixStream::connect(&socket) {
                return Availability::Unavailable(format!(
                    "the X display {display} cannot be reached ({}: {e}): no global hotkey",
                    socket.display()
                ));
            }
        }
        if wayland {
            Availability::Limited(format!(
                "Wayland session: the hotkey works only while an X11 (XWayland) window has focus. Bind `{SHORTCUT_COMMAND}` as a keyboard shortcut in your desktop's settings for a hotkey that always works."
            ))
        } else {
            Availability::Ready
        }
    }
}

#[cfg(not(all(unix, not(target_os = "macos"))))]
mod session {
    use super::Availability;

    /// Windows and macOS always have a desktop session when the agent runs.
    pub(super) fn availability(_env: impl Fn(&str) -> Option<String>) -> Availability {
        Availability::Ready
    }
}

/// The registered global hotkey. Create it on the main thread (macOS and Windows deliver hotkey
/// events through the main thread's event loop, which Slint runs).
pub struct HotkeyGrab {
    manager: GlobalHotKeyManager,
    current: Option<HotkeySpec>,
}

impl HotkeyGrab {
    pub fn new() -> Result<Self, String> {
        let manager = GlobalHotKeyManager::new().map_err(|e| e.to_string())?;
        Ok(Self {
            manager,
            current: None,
        })
    }

    /// Replaces the grabbed hotkey (`None` releases it). On failure nothing is grabbed.
    pub fn set(&mut self, spec: Option<HotkeySpec>) -> Result<(), String> {
        if let Some(old) = self.current.take() {
            if let Err(e) = self.manager.unregister(old.hotkey()) {
                log::warn!("could not release the hotkey {}: {e}", old.label());
            }
        }
        if let Some(spec) = spec {
            self.manager.register(spec.hotkey()).map_err(|e| match e {
                global_hotkey::Error::AlreadyRegistered(_) => format!(
                    "{} is already taken by another application; choose another",
                    spec.label()
                ),
                other => format!("cannot grab {}: {other}", spec.label()),
            })?;
            self.current = Some(spec);
        }
        Ok(())
    }

    pub fn current(&self) -> Option<HotkeySpec> {
        self.current
    }
}

/// Sends every hotkey edge (with the hotkey's id) to `handler`, on whatever thread the platform
/// reports it (the X11 thread on Linux, the main thread on Windows/macOS). Call once.
pub fn on_key_edges(handler: impl Fn(u32, KeyEdge) + Send + Sync + 'static) {
    GlobalHotKeyEvent::set_event_handler(Some(move |event: GlobalHotKeyEvent| {
        let edge = match event.state {
            HotKeyState::Pressed => KeyEdge::Pressed,
            HotKeyState::Released => KeyEdge::Released,
        };
        handler(event.id, edge);
    }));
}

#[cfg(all(test, unix, not(target_os = "macos")))]
mod tests {
    use super::session::{availability, local_display_socket};
    use super::Availability;
    use std::collections::HashMap;
    use std::path::PathBuf;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn display_names_map_to_their_socket() {
        assert_eq!(
            local_display_socket(":77"),
            Some(PathBuf::from("/tmp/.X11-unix/X77"))
        );
        assert_eq!(
            local_display_socket(":0.1"),
            Some(PathBuf::from("/tmp/.X11-unix/X0"))
        );
        assert_eq!(local_display_socket("remote:0"), None);
        assert_eq!(local_display_socket(":x"), None);
    }

    #[test]
    fn no_display_is_reported_not_silently_accepted() {
        assert!(
            matches!(availability(env_of(&[])), Availability::Unavailable(m) if m.contains("DISPLAY"))
        );
        assert!(matches!(
            availability(env_of(&[("WAYLAND_DISPLAY", "wayland-0")])),
            Availability::Unavailable(m) if m.contains("hardmute toggle")
        ));
        // A display number nobody serves (the socket does not exist).
        assert!(matches!(
            availability(env_of(&[("DISPLAY", ":65000")])),
            Availability::Unavailable(m) if m.contains(":65000")
        ));
    }

    #[test]
    fn a_served_display_is_ready_and_xwayland_is_limited() {
        // Stand in for an X server: anything listening on a Unix socket passes the check, so
        // bind one where a display number would put it.
        let dir = std::path::Path::new("/tmp/.X11-unix");
        if std::fs::create_dir_all(dir).is_err() {
            eprintln!("skipped: cannot create /tmp/.X11-unix");
            return;
        }
        let number = 60000 + std::process::id() % 5000;
        let socket = dir.join(format!("X{number}"));
        let _ = std::fs::remove_file(&socket);
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let display = format!(":{number}");
        assert_eq!(
            availability(env_of(&[("DISPLAY", &display)])),
            Availability::Ready
        );
        assert!(matches!(
            availability(env_of(&[
                ("DISPLAY", &display),
                ("WAYLAND_DISPLAY", "wayland-0")
            ])),
            Availability::Limited(_)
        ));
        let _ = std::fs::remove_file(&socket);
    }
}
