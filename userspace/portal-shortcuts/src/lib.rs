//! HardMute's global shortcuts on Wayland through the XDG desktop portal
//! (`org.freedesktop.portal.GlobalShortcuts`, via `ashpd`).
//!
//! Wayland has no global key grab; desktops that implement this portal (KDE Plasma 5.27+,
//! GNOME 48+, Hyprland's portal) bind shortcuts for an application after asking the user, and
//! report presses (`Activated`) and releases (`Deactivated`). That gives a real push-to-talk
//! where `hardmute toggle` bound as a desktop shortcut can only toggle.
//!
//! [`PortalShortcuts::start`] opens a portal session, binds two shortcuts
//! ([`ShortcutAction::ToggleMute`], [`ShortcutAction::PushToTalk`]) and calls the caller's
//! callback with every [`ShortcutEvent`] from its own thread, so a non-async caller (the panel's
//! Slint event loop) needs no runtime. [`probe`] says whether the portal is there at all.
//!
//! Linux only: elsewhere the types exist, [`probe`] and [`PortalShortcuts::start`] return
//! [`PortalError::Unsupported`].
//!
//! Tested against a stand-in portal written from the specification, and (ignored by default)
//! through the real xdg-desktop-portal 1.16 frontend with a stand-in desktop backend; never
//! against a real GNOME, KDE or Hyprland backend (see the crate README).

mod requests;
mod trigger;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use linux::{probe, probe_on, PortalShortcuts};

// Also built in tests on Linux, so the other platforms' stand-in is compiled and checked here.
#[cfg(any(not(target_os = "linux"), test))]
mod unsupported;
#[cfg(not(target_os = "linux"))]
pub use unsupported::{probe, PortalShortcuts};

pub use requests::{MuteRequest, ShortcutRequests};
pub use trigger::{to_portal_trigger, TriggerError};

use std::fmt;

/// The two shortcuts HardMute binds. Their ids are what the desktop stores the user's choice
/// under, so they must never change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShortcutAction {
    /// Each activation flips muted <-> live.
    ToggleMute,
    /// Live while held: `Activated` = unmute, `Deactivated` = mute.
    PushToTalk,
}

impl ShortcutAction {
    pub const ALL: [ShortcutAction; 2] = [Self::ToggleMute, Self::PushToTalk];

    /// The shortcut id sent to the portal.
    pub fn id(self) -> &'static str {
        match self {
            Self::ToggleMute => "toggle-mute",
            Self::PushToTalk => "push-to-talk",
        }
    }

    pub fn from_id(id: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|action| action.id() == id)
    }

    /// What the desktop shows in its dialog and settings.
    pub fn description(self) -> &'static str {
        match self {
            Self::ToggleMute => "HardMute: mute or unmute the microphone",
            Self::PushToTalk => "HardMute: push to talk (microphone live while held)",
        }
    }
}

/// A shortcut as the desktop bound it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundShortcut {
    pub action: ShortcutAction,
    /// How the desktop describes the trigger the user ended up with (e.g. "Ctrl+Alt+M"); empty
    /// when the desktop left it unassigned or says nothing.
    pub trigger_description: String,
}

/// What the callback given to [`PortalShortcuts::start`] receives, on the portal thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShortcutEvent {
    /// The shortcut was pressed.
    Activated(ShortcutAction),
    /// The shortcut was released.
    Deactivated(ShortcutAction),
    /// The user changed the triggers in the desktop's settings.
    Changed(Vec<BoundShortcut>),
    /// The desktop closed the session (or the bus went away): no more events will come. A held
    /// push-to-talk will never see its `Deactivated`; the caller must mute.
    Closed,
}

/// The refusal codes of a portal request's `Response` signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Response code 1: the user cancelled (e.g. dismissed the dialog).
    Cancelled,
    /// Response code 2: the desktop ended the interaction some other way.
    Other,
}

/// The portal call a refusal answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortalStep {
    CreateSession,
    BindShortcuts,
}

/// Why the portal's shortcuts are not available.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PortalError {
    /// Not Linux: there is no XDG desktop portal.
    Unsupported,
    /// The hotkey cannot be written as a portal trigger.
    Trigger(TriggerError),
    /// No D-Bus session bus to talk to.
    NoSessionBus(String),
    /// Nobody serves `org.freedesktop.portal.Desktop` (xdg-desktop-portal is not installed or
    /// not activatable).
    NoPortal,
    /// The portal runs, but no backend offers `org.freedesktop.portal.GlobalShortcuts` (e.g.
    /// GNOME before 48, or a desktop whose portal backend lacks it).
    NoGlobalShortcuts,
    /// The user or the desktop refused (Response code 1 or 2).
    Refused(PortalStep, Refusal),
    /// The desktop closed the session before the shortcuts were bound.
    SessionClosed,
    /// Any other failure of the portal conversation (a D-Bus error, a malformed reply).
    Portal(String),
}

impl fmt::Display for PortalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unsupported => f.write_str("the XDG GlobalShortcuts portal exists only on Linux"),
            Self::Trigger(e) => write!(f, "hotkey: {e}"),
            Self::NoSessionBus(e) => write!(f, "no D-Bus session bus: {e}"),
            Self::NoPortal => f.write_str(
                "no XDG desktop portal on the session bus (is xdg-desktop-portal installed?)",
            ),
            Self::NoGlobalShortcuts => f.write_str(
                "this desktop's portal does not offer global shortcuts (GlobalShortcuts portal)",
            ),
            Self::Refused(step, Refusal::Cancelled) => {
                write!(f, "the shortcut request was cancelled ({step:?})")
            }
            Self::Refused(step, Refusal::Other) => {
                write!(f, "the desktop refused the shortcut request ({step:?})")
            }
            Self::SessionClosed => f.write_str("the desktop closed the shortcut session"),
            Self::Portal(e) => write!(f, "portal error: {e}"),
        }
    }
}

impl std::error::Error for PortalError {}

impl From<TriggerError> for PortalError {
    fn from(e: TriggerError) -> Self {
        Self::Trigger(e)
    }
}

/// What [`probe`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortalInfo {
    /// The `version` property of `org.freedesktop.portal.GlobalShortcuts` (2 has
    /// `ConfigureShortcuts`).
    pub version: u32,
}

/// How to start the portal shortcuts; [`PortalConfig::new`] gives the defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortalConfig {
    /// The preferred trigger in our syntax (`Ctrl+Alt+M`), or `None` to let the user pick one in
    /// the desktop's dialog.
    pub trigger: Option<String>,
    /// Which shortcut gets the preferred trigger; the other one is bound without a preference
    /// (two shortcuts cannot want the same keys), for the user to assign in the desktop settings.
    pub trigger_for: ShortcutAction,
    /// An application id to register for this process first
    /// (`org.freedesktop.host.portal.Registry`, xdg-desktop-portal 1.19+), so that desktops which
    /// need one (GNOME) can name the app. It must match an installed `.desktop` file's name.
    /// Ignored (with a warning) where the registry does not exist.
    pub app_id: Option<String>,
    /// A D-Bus address to use instead of the session bus (tests run a private bus).
    pub bus_address: Option<String>,
}

impl PortalConfig {
    /// `trigger` preferred for [`ShortcutAction::ToggleMute`], session bus, no app id.
    pub fn new(trigger: &str) -> Self {
        Self {
            trigger: Some(trigger.to_owned()),
            trigger_for: ShortcutAction::ToggleMute,
            app_id: None,
            bus_address: None,
        }
    }
}

/// Whether this looks like a Wayland session (`WAYLAND_DISPLAY` set, or `XDG_SESSION_TYPE` is
/// `wayland`): where the portal is the only way to a real global shortcut.
pub fn is_wayland_session() -> bool {
    is_wayland_session_in(|name| std::env::var(name).ok())
}

fn is_wayland_session_in(env: impl Fn(&str) -> Option<String>) -> bool {
    env("WAYLAND_DISPLAY").is_some_and(|v| !v.is_empty())
        || env("XDG_SESSION_TYPE").is_some_and(|v| v.eq_ignore_ascii_case("wayland"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn wayland_is_recognised_from_either_variable() {
        assert!(is_wayland_session_in(env_of(&[(
            "WAYLAND_DISPLAY",
            "wayland-0"
        )])));
        assert!(is_wayland_session_in(env_of(&[(
            "XDG_SESSION_TYPE",
            "wayland"
        )])));
        assert!(!is_wayland_session_in(env_of(&[(
            "XDG_SESSION_TYPE",
            "x11"
        )])));
        assert!(!is_wayland_session_in(env_of(&[("WAYLAND_DISPLAY", "")])));
        assert!(!is_wayland_session_in(env_of(&[("DISPLAY", ":0")])));
    }

    #[test]
    fn shortcut_ids_round_trip_and_unknown_ids_are_ignored() {
        for action in ShortcutAction::ALL {
            assert_eq!(ShortcutAction::from_id(action.id()), Some(action));
        }
        assert_eq!(ShortcutAction::from_id("toggle"), None);
        assert_ne!(
            ShortcutAction::ToggleMute.id(),
            ShortcutAction::PushToTalk.id()
        );
    }
}
