//! What each shortcut event asks the daemon for, with push-to-talk's one piece of state: a
//! press whose release never comes (session closed, shortcuts dropped) must still end muted.

use crate::{ShortcutAction, ShortcutEvent};

/// A request for hardmuted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MuteRequest {
    Toggle,
    Mute,
    Unmute,
}

/// Turns [`ShortcutEvent`]s into [`MuteRequest`]s: toggle-mute presses toggle, push-to-talk is
/// live only while held.
#[derive(Debug, Default)]
pub struct ShortcutRequests {
    push_to_talk_held: bool,
}

impl ShortcutRequests {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn on_event(&mut self, event: &ShortcutEvent) -> Option<MuteRequest> {
        match event {
            ShortcutEvent::Activated(ShortcutAction::ToggleMute) => Some(MuteRequest::Toggle),
            ShortcutEvent::Deactivated(ShortcutAction::ToggleMute) => None,
            ShortcutEvent::Activated(ShortcutAction::PushToTalk) => {
                self.push_to_talk_held = true;
                Some(MuteRequest::Unmute)
            }
            ShortcutEvent::Deactivated(ShortcutAction::PushToTalk) => {
                self.push_to_talk_held = false;
                Some(MuteRequest::Mute)
            }
            ShortcutEvent::Changed(_) => None,
            ShortcutEvent::Closed => self.release(),
        }
    }

    /// The shortcuts are going away (closed, replaced, the panel quits): `Mute` if push-to-talk
    /// was held, since its release will never be reported.
    pub fn release(&mut self) -> Option<MuteRequest> {
        std::mem::take(&mut self.push_to_talk_held).then_some(MuteRequest::Mute)
    }

    pub fn push_to_talk_held(&self) -> bool {
        self.push_to_talk_held
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ShortcutAction::*;
    use ShortcutEvent::*;

    #[test]
    fn toggle_acts_on_press_only() {
        let mut requests = ShortcutRequests::new();
        assert_eq!(
            requests.on_event(&Activated(ToggleMute)),
            Some(MuteRequest::Toggle)
        );
        assert_eq!(requests.on_event(&Deactivated(ToggleMute)), None);
        assert_eq!(requests.on_event(&Changed(vec![])), None);
    }

    #[test]
    fn push_to_talk_is_live_only_while_held() {
        let mut requests = ShortcutRequests::new();
        assert_eq!(
            requests.on_event(&Activated(PushToTalk)),
            Some(MuteRequest::Unmute)
        );
        assert!(requests.push_to_talk_held());
        assert_eq!(
            requests.on_event(&Deactivated(PushToTalk)),
            Some(MuteRequest::Mute)
        );
        assert!(!requests.push_to_talk_held());
        assert_eq!(
            requests.on_event(&Closed),
            None,
            "not held: nothing to undo"
        );
    }

    #[test]
    fn a_session_closed_while_held_mutes_once() {
        let mut requests = ShortcutRequests::new();
        requests.on_event(&Activated(PushToTalk));
        assert_eq!(requests.on_event(&Closed), Some(MuteRequest::Mute));
        assert_eq!(requests.release(), None);
        requests.on_event(&Activated(PushToTalk));
        assert_eq!(requests.release(), Some(MuteRequest::Mute));
    }
}
