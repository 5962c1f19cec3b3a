//! The global hotkey: what the user types (`Ctrl+Alt+M`), how key edges become requests to the
//! daemon (toggle, or push-to-talk: hold to unmute), and the platform grab ([`platform`]).
//!
//! The logic here is pure and tested; only [`platform`] touches the OS.

pub mod platform;
pub mod portal;

use global_hotkey::hotkey::{Code, HotKey, Modifiers};
use std::fmt;

/// What the hotkey does: the daemon stores it, so the protocol's type is the one type.
pub use hardmute_ipc::HotkeyMode;

/// The mode's index in the panel's mode chooser.
pub fn mode_index(mode: HotkeyMode) -> i32 {
    match mode {
        HotkeyMode::Toggle => 0,
        HotkeyMode::PushToTalk => 1,
    }
}

/// The mode at an index of the panel's mode chooser.
pub fn mode_from_index(index: i32) -> HotkeyMode {
    if index == 1 {
        HotkeyMode::PushToTalk
    } else {
        HotkeyMode::Toggle
    }
}

/// A key edge reported by the platform grab.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyEdge {
    Pressed,
    Released,
}

/// What a key edge asks the daemon for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HotkeyRequest {
    Toggle,
    Mute,
    Unmute,
}

/// Turns key edges into requests. Push-to-talk remembers whether the keys are held so that a
/// release (or the hotkey being changed or dropped while held) always mutes again.
#[derive(Debug, Default)]
pub struct HotkeyLogic {
    mode: HotkeyMode,
    held: bool,
}

impl HotkeyLogic {
    pub fn new(mode: HotkeyMode) -> Self {
        Self { mode, held: false }
    }

    pub fn mode(&self) -> HotkeyMode {
        self.mode
    }

    pub fn on_edge(&mut self, edge: KeyEdge) -> Option<HotkeyRequest> {
        match (self.mode, edge) {
            (HotkeyMode::Toggle, KeyEdge::Pressed) => Some(HotkeyRequest::Toggle),
            (HotkeyMode::Toggle, KeyEdge::Released) => None,
            (HotkeyMode::PushToTalk, KeyEdge::Pressed) => {
                self.held = true;
                Some(HotkeyRequest::Unmute)
            }
            (HotkeyMode::PushToTalk, KeyEdge::Released) => {
                self.held = false;
                Some(HotkeyRequest::Mute)
            }
        }
    }

    /// The hotkey is being replaced or dropped: returns `Mute` if push-to-talk was held, since
    /// its release will never arrive.
    pub fn reset(&mut self, mode: HotkeyMode) -> Option<HotkeyRequest> {
        let was_held = std::mem::take(&mut self.held);
        self.mode = mode;
        was_held.then_some(HotkeyRequest::Mute)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HotkeyError {
    Empty,
    /// The text is not a key combination the grab understands.
    Unparsable(String),
    /// A plain key without modifiers would swallow that key everywhere (typing "m" would mute).
    NeedsModifier(String),
}

impl fmt::Display for HotkeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("no hotkey given"),
            Self::Unparsable(text) => write!(
                f,
                "{text:?} is not a hotkey; write modifiers then one key, e.g. Ctrl+Alt+M"
            ),
            Self::NeedsModifier(text) => write!(
                f,
                "{text:?} has no modifier: add Ctrl, Alt, Shift or Super (function keys may stand alone)"
            ),
        }
    }
}

impl std::error::Error for HotkeyError {}

/// A validated hotkey with a normalised label (`Ctrl+Alt+M`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HotkeySpec {
    hotkey: HotKey,
}

impl HotkeySpec {
    pub const DEFAULT: &'static str = "Ctrl+Alt+M";

    pub fn parse(text: &str) -> Result<Self, HotkeyError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(HotkeyError::Empty);
        }
        // The crate wants no spaces around '+', and treats a lone token as a key.
        let compact: String = trimmed
            .split('+')
            .map(str::trim)
            .collect::<Vec<_>>()
            .join("+");
        let hotkey: HotKey = compact
            .parse()
            .map_err(|_| HotkeyError::Unparsable(trimmed.to_owned()))?;
        if hotkey.mods.is_empty() && !is_standalone_key(hotkey.key) {
            return Err(HotkeyError::NeedsModifier(trimmed.to_owned()));
        }
        Ok(Self { hotkey })
    }

    pub fn hotkey(&self) -> HotKey {
        self.hotkey
    }

    pub fn id(&self) -> u32 {
        self.hotkey.id()
    }

    /// `Ctrl+Alt+M`, whatever case and spacing the user typed.
    pub fn label(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        for (flag, name) in [
            (Modifiers::CONTROL, "Ctrl"),
            (Modifiers::ALT, "Alt"),
            (Modifiers::SHIFT, "Shift"),
            (Modifiers::META, "Super"),
        ] {
            if self.hotkey.mods.contains(flag) {
                parts.push(name.into());
            }
        }
        let key = format!("{:?}", self.hotkey.key);
        let key = key
            .strip_prefix("Key")
            .or_else(|| key.strip_prefix("Digit"))
            .unwrap_or(&key);
        parts.push(key.to_owned());
        parts.join("+")
    }
}

fn is_standalone_key(code: Code) -> bool {
    use Code::*;
    matches!(
        code,
        F13 | F14 | F15 | F16 | F17 | F18 | F19 | F20 | F21 | F22 | F23 | F24 | Pause | ScrollLock
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises_the_default_and_variants() {
        let default = HotkeySpec::parse(HotkeySpec::DEFAULT).unwrap();
        assert_eq!(default.label(), "Ctrl+Alt+M");
        assert_eq!(
            default.hotkey(),
            HotKey::new(Some(Modifiers::CONTROL | Modifiers::ALT), Code::KeyM)
        );
        let spaced = HotkeySpec::parse(" ctrl + alt + m ").unwrap();
        assert_eq!(spaced, default, "case and spaces do not matter");
        assert_eq!(
            HotkeySpec::parse("Shift+Super+F9").unwrap().label(),
            "Shift+Super+F9"
        );
        assert_eq!(HotkeySpec::parse("F13").unwrap().label(), "F13");
    }

    #[test]
    fn refuses_empty_garbage_and_bare_keys() {
        assert_eq!(HotkeySpec::parse("  "), Err(HotkeyError::Empty));
        assert!(matches!(
            HotkeySpec::parse("Ctrl+Alt+Banana"),
            Err(HotkeyError::Unparsable(_))
        ));
        assert!(matches!(
            HotkeySpec::parse("Ctrl+M+Alt"),
            Err(HotkeyError::Unparsable(_))
        ));
        assert!(matches!(
            HotkeySpec::parse("m"),
            Err(HotkeyError::NeedsModifier(_))
        ));
    }

    #[test]
    fn toggle_acts_on_press_only() {
        let mut logic = HotkeyLogic::new(HotkeyMode::Toggle);
        assert_eq!(logic.on_edge(KeyEdge::Pressed), Some(HotkeyRequest::Toggle));
        assert_eq!(logic.on_edge(KeyEdge::Released), None);
        assert_eq!(logic.on_edge(KeyEdge::Pressed), Some(HotkeyRequest::Toggle));
    }

    #[test]
    fn push_to_talk_is_live_only_while_held() {
        let mut logic = HotkeyLogic::new(HotkeyMode::PushToTalk);
        assert_eq!(logic.on_edge(KeyEdge::Pressed), Some(HotkeyRequest::Unmute));
        assert_eq!(logic.on_edge(KeyEdge::Released), Some(HotkeyRequest::Mute));
        assert_eq!(logic.reset(HotkeyMode::PushToTalk), None, "not held");
    }

    #[test]
    fn dropping_a_held_push_to_talk_key_mutes() {
        let mut logic = HotkeyLogic::new(HotkeyMode::PushToTalk);
        logic.on_edge(KeyEdge::Pressed);
        assert_eq!(logic.reset(HotkeyMode::Toggle), Some(HotkeyRequest::Mute));
        assert_eq!(logic.mode(), HotkeyMode::Toggle);
        assert_eq!(logic.on_edge(KeyEdge::Pressed), Some(HotkeyRequest::Toggle));
    }

    #[test]
    fn mode_round_trips_through_the_chooser_index() {
        for mode in [HotkeyMode::Toggle, HotkeyMode::PushToTalk] {
            assert_eq!(mode_from_index(mode_index(mode)), mode);
        }
    }
}
