//! The hotkey on Wayland: the XDG GlobalShortcuts portal (through `hardmute-portal-shortcuts`).
//!
//! Wayland has no global grab; the desktop binds shortcuts for the app, after asking the user.
//! Both of HardMute's shortcuts are bound (toggle-mute and push-to-talk); the daemon's hotkey is
//! sent as the preferred trigger of the one its mode names, and the desktop has the last word
//! (its dialog and settings). Binding blocks until the user answers the desktop's dialog, so it
//! runs on a thread of its own; the outcome reaches the panel through the status callback.
//!
//! A new hotkey means a new portal session (a session binds once): the old one is closed first,
//! and a push-to-talk held in it is muted, since its release will never be reported.

use super::{HotkeyMode, HotkeyRequest, HotkeySpec};
use hardmute_portal_shortcuts::{
    MuteRequest, PortalConfig, PortalError, PortalShortcuts, ShortcutAction, ShortcutEvent,
    ShortcutRequests,
};
use parking_lot::Mutex;
use std::sync::Arc;

/// Where requests and status sentences go (the daemon link; the panel's hotkey line).
pub type RequestSink = Arc<dyn Fn(HotkeyRequest) + Send + Sync>;
pub type StatusSink = Arc<dyn Fn(String) + Send + Sync>;

/// True when this session should use the portal: a Wayland session (no global grab there).
pub fn wanted() -> bool {
    cfg!(target_os = "linux") && hardmute_portal_shortcuts::is_wayland_session()
}

/// One binding attempt: its portal session once bound, and push-to-talk's held state.
struct Binding {
    generation: u64,
    shortcuts: Option<PortalShortcuts>,
    requests: Arc<Mutex<ShortcutRequests>>,
}

pub struct PortalHotkey {
    bus_address: Option<String>,
    version: u32,
    current: Arc<Mutex<Option<Binding>>>,
    generation: u64,
    on_request: RequestSink,
    status: Arc<Mutex<StatusSink>>,
}

fn request_of(request: MuteRequest) -> HotkeyRequest {
    match request {
        MuteRequest::Toggle => HotkeyRequest::Toggle,
        MuteRequest::Mute => HotkeyRequest::Mute,
        MuteRequest::Unmute => HotkeyRequest::Unmute,
    }
}

impl PortalHotkey {
    /// Checks that a portal with GlobalShortcuts answers on the session bus (or on
    /// `bus_address`); binds nothing yet.
    pub fn probe(
        bus_address: Option<String>,
        on_request: RequestSink,
    ) -> Result<Self, PortalError> {
        let info = match &bus_address {
            Some(address) => probe_on(address)?,
            None => hardmute_portal_shortcuts::probe()?,
        };
        Ok(Self {
            bus_address,
            version: info.version,
            current: Arc::new(Mutex::new(None)),
            generation: 0,
            on_request,
            status: Arc::new(Mutex::new(Arc::new(|text: String| {
                log::info!("hotkey: {text}")
            }))),
        })
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    /// Where later outcomes (bound, refused, closed by the desktop) are reported.
    pub fn set_status_sink(&self, sink: StatusSink) {
        *self.status.lock() = sink;
    }

    /// Asks the desktop to bind HardMute's shortcuts with `spec` preferred for `mode`'s
    /// shortcut. Returns at once with the sentence to show while the desktop decides.
    pub fn bind(&mut self, spec: HotkeySpec, mode: HotkeyMode) -> String {
        self.unbind();
        self.generation += 1;
        let generation = self.generation;
        let requests = Arc::new(Mutex::new(ShortcutRequests::new()));
        *self.current.lock() = Some(Binding {
            generation,
            shortcuts: None,
            requests: requests.clone(),
        });
        let trigger_for = match mode {
            HotkeyMode::Toggle => ShortcutAction::ToggleMute,
            HotkeyMode::PushToTalk => ShortcutAction::PushToTalk,
        };
        let config = PortalConfig {
            trigger: Some(spec.label()),
            trigger_for,
            app_id: None,
            bus_address: self.bus_address.clone(),
        };
        let current = self.current.clone();
        let on_request = self.on_request.clone();
        let status = self.status.clone();
        let label = spec.label();
        let spawned = std::thread::Builder::new()
            .name("hardmute-portal-bind".into())
            .spawn(move || {
                let events_status = status.clone();
                let events = move |event: ShortcutEvent| {
                    let request = requests.lock().on_event(&event);
                    if let Some(request) = request {
                        log::debug!("portal shortcut {event:?} -> {request:?}");
                        on_request(request_of(request));
                    }
                    match event {
                        ShortcutEvent::Closed => {
                            let report = events_status.lock().clone();
                            report(
                                "The desktop ended HardMute's shortcuts; set the hotkey again to \
                                 rebind them, or bind `hardmute toggle` in the desktop's settings."
                                    .into(),
                            );
                        }
                        ShortcutEvent::Changed(bound) => {
                            let report = events_status.lock().clone();
                            report(describe(&bound));
                        }
                        _ => {}
                    }
                };
                let outcome = PortalShortcuts::start_with(config, events);
                let report = status.lock().clone();
                let mut slot = current.lock();
                match (slot.as_mut(), outcome) {
                    (Some(binding), Ok(shortcuts)) if binding.generation == generation => {
                        let text = describe(shortcuts.bound());
                        binding.shortcuts = Some(shortcuts);
                        drop(slot);
                        report(text);
                    }
                    // Superseded by a newer hotkey or unbound meanwhile: close this session.
                    (_, Ok(shortcuts)) => {
                        drop(slot);
                        drop(shortcuts);
                    }
                    (Some(binding), Err(e)) if binding.generation == generation => {
                        drop(slot);
                        report(format!(
                            "{label} not bound: {e}. Bind `hardmute toggle` as a shortcut in \
                             the desktop's settings instead."
                        ));
                    }
                    (_, Err(_)) => {}
                }
            });
        match spawned {
            Ok(_) => format!(
                "Asking the desktop to bind {} ({}); confirm it in the desktop's dialog.",
                spec.label(),
                match mode {
                    HotkeyMode::Toggle => "press to toggle",
                    HotkeyMode::PushToTalk => "hold to talk",
                }
            ),
            Err(e) => format!("cannot ask the desktop for shortcuts: {e}"),
        }
    }

    /// Closes the current portal session, muting a held push-to-talk first.
    pub fn unbind(&mut self) {
        let previous = self.current.lock().take();
        if let Some(binding) = previous {
            if let Some(request) = binding.requests.lock().release() {
                (self.on_request)(request_of(request));
            }
            // Dropping closes the portal session and joins its thread (never called from it).
            drop(binding.shortcuts);
        }
    }

    /// Whether the desktop has bound the shortcuts of the current hotkey.
    pub fn is_bound(&self) -> bool {
        self.current
            .lock()
            .as_ref()
            .is_some_and(|b| b.shortcuts.is_some())
    }
}

impl Drop for PortalHotkey {
    fn drop(&mut self) {
        self.unbind();
    }
}

#[cfg(target_os = "linux")]
fn probe_on(address: &str) -> Result<hardmute_portal_shortcuts::PortalInfo, PortalError> {
    hardmute_portal_shortcuts::probe_on(address)
}

#[cfg(not(target_os = "linux"))]
fn probe_on(_address: &str) -> Result<hardmute_portal_shortcuts::PortalInfo, PortalError> {
    Err(PortalError::Unsupported)
}

/// The sentence for what the desktop bound.
fn describe(bound: &[hardmute_portal_shortcuts::BoundShortcut]) -> String {
    let part = |action: ShortcutAction, name: &str| {
        bound
            .iter()
            .find(|b| b.action == action)
            .map(|b| {
                if b.trigger_description.is_empty() {
                    format!("{name}: no keys yet (assign them in the desktop's settings)")
                } else {
                    format!("{name}: {}", b.trigger_description)
                }
            })
            .unwrap_or_else(|| format!("{name}: not bound"))
    };
    format!(
        "Bound by the desktop (GlobalShortcuts portal) — {}; {}. Change them in the desktop's \
         settings.",
        part(ShortcutAction::ToggleMute, "toggle"),
        part(ShortcutAction::PushToTalk, "push to talk")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use hardmute_portal_shortcuts::BoundShortcut;

    #[test]
    fn the_sentence_names_both_shortcuts_and_unassigned_keys() {
        let text = describe(&[
            BoundShortcut {
                action: ShortcutAction::ToggleMute,
                trigger_description: "Ctrl+Alt+M".into(),
            },
            BoundShortcut {
                action: ShortcutAction::PushToTalk,
                trigger_description: String::new(),
            },
        ]);
        assert!(text.contains("toggle: Ctrl+Alt+M"), "{text}");
        assert!(text.contains("push to talk: no keys yet"), "{text}");
        let none = describe(&[]);
        assert!(none.contains("toggle: not bound") && none.contains("push to talk: not bound"));
    }

    #[test]
    fn portal_requests_map_one_to_one() {
        assert_eq!(request_of(MuteRequest::Toggle), HotkeyRequest::Toggle);
        assert_eq!(request_of(MuteRequest::Mute), HotkeyRequest::Mute);
        assert_eq!(request_of(MuteRequest::Unmute), HotkeyRequest::Unmute);
    }
}
