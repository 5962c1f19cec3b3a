//! Our hotkey syntax (`Ctrl+Alt+M`, the panel's) to the portal's trigger syntax (`CTRL+ALT+m`).
//!
//! The portal's `preferred_trigger` follows the freedesktop "Shortcuts" specification: modifiers
//! `CTRL`, `ALT`, `SHIFT`, `NUM`, `LOGO` (xkbcommon's `XKB_MOD_NAME_*`), then one key named as its
//! xkbcommon keysym without the `XKB_KEY_` prefix (`m`, `1`, `F9`, `Return`, `Scroll_Lock`),
//! joined by `+`. Letters are the lower-case (unshifted) keysym, since the spec limits shortcuts
//! to the base layer.
//!
//! The trigger is only a preference: the desktop shows it in its confirmation dialog and the user
//! (or the desktop) may choose another one.

use std::fmt;

/// Why a hotkey cannot be written as a portal trigger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TriggerError {
    Empty,
    /// A `+`-separated part is neither a modifier nor a key we can name.
    UnknownKey(String),
    /// A modifier where the key belongs (`Ctrl+Alt`), or a key before a modifier (`M+Ctrl`).
    NoKey(String),
    /// More than one non-modifier key (`Ctrl+M+N`).
    TwoKeys(String),
}

impl fmt::Display for TriggerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("no hotkey given"),
            Self::UnknownKey(part) => write!(f, "{part:?} is not a key the portal can name"),
            Self::NoKey(text) => write!(
                f,
                "{text:?} has no key after its modifiers; write modifiers then one key, e.g. Ctrl+Alt+M"
            ),
            Self::TwoKeys(text) => write!(f, "{text:?} names more than one key"),
        }
    }
}

impl std::error::Error for TriggerError {}

/// Modifiers in the order the spec's examples use (`CTRL+ALT+Return`, `CTRL+SHIFT+a`).
const MODIFIER_ORDER: [&str; 4] = ["CTRL", "ALT", "SHIFT", "LOGO"];

fn modifier(part: &str) -> Option<&'static str> {
    match part.to_ascii_lowercase().as_str() {
        "ctrl" | "control" | "primary" => Some("CTRL"),
        "alt" | "option" | "mod1" => Some("ALT"),
        "shift" => Some("SHIFT"),
        "super" | "meta" | "logo" | "win" | "windows" | "cmd" | "command" | "mod4" => Some("LOGO"),
        _ => None,
    }
}

/// The xkbcommon keysym name of one key in our syntax (the `global-hotkey` crate's names, which
/// the panel accepts: `M`, `KeyM`, `5`, `Digit5`, `F9`, `Space`, `ArrowUp`, ...).
fn keysym(part: &str) -> Option<String> {
    let lower = part.to_ascii_lowercase();
    let bare = lower
        .strip_prefix("key")
        .filter(|rest| rest.len() == 1)
        .or_else(|| lower.strip_prefix("digit").filter(|rest| rest.len() == 1))
        .unwrap_or(&lower);
    if bare.len() == 1 {
        let c = bare.as_bytes()[0];
        if c.is_ascii_alphanumeric() {
            return Some((c as char).to_string());
        }
    }
    if let Some(number) = bare.strip_prefix('f') {
        if let Ok(n @ 1..=24) = number.parse::<u8>() {
            return Some(format!("F{n}"));
        }
    }
    let name = match bare {
        "space" => "space",
        "enter" | "return" => "Return",
        "tab" => "Tab",
        "escape" | "esc" => "Escape",
        "backspace" => "BackSpace",
        "delete" | "del" => "Delete",
        "insert" | "ins" => "Insert",
        "home" => "Home",
        "end" => "End",
        "pageup" => "Page_Up",
        "pagedown" => "Page_Down",
        "arrowup" | "up" => "Up",
        "arrowdown" | "down" => "Down",
        "arrowleft" | "left" => "Left",
        "arrowright" | "right" => "Right",
        "pause" => "Pause",
        "scrolllock" => "Scroll_Lock",
        "printscreen" | "print" => "Print",
        "minus" => "minus",
        "equal" => "equal",
        "comma" => "comma",
        "period" => "period",
        "slash" => "slash",
        "backslash" => "backslash",
        "semicolon" => "semicolon",
        "quote" => "apostrophe",
        "backquote" => "grave",
        "bracketleft" => "bracketleft",
        "bracketright" => "bracketright",
        _ => return None,
    };
    Some(name.to_owned())
}

/// `Ctrl+Alt+M` -> `CTRL+ALT+m`. Case and spaces around `+` do not matter; modifiers come first
/// (as the panel requires) and are written in a fixed order, each once.
pub fn to_portal_trigger(hotkey: &str) -> Result<String, TriggerError> {
    let text = hotkey.trim();
    if text.is_empty() {
        return Err(TriggerError::Empty);
    }
    let parts: Vec<&str> = text.split('+').map(str::trim).collect();
    let (key_part, modifier_parts) = parts.split_last().expect("split yields at least one part");
    let mut modifiers: Vec<&'static str> = Vec::new();
    for part in modifier_parts {
        match modifier(part) {
            Some(m) => modifiers.push(m),
            None if keysym(part).is_some() => return Err(TriggerError::TwoKeys(text.to_owned())),
            None => return Err(TriggerError::UnknownKey((*part).to_owned())),
        }
    }
    if modifier(key_part).is_some() {
        return Err(TriggerError::NoKey(text.to_owned()));
    }
    let key = keysym(key_part).ok_or_else(|| TriggerError::UnknownKey((*key_part).to_owned()))?;
    let mut out: Vec<String> = MODIFIER_ORDER
        .iter()
        .filter(|m| modifiers.contains(m))
        .map(|m| (*m).to_owned())
        .collect();
    out.push(key);
    Ok(out.join("+"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_the_default_and_common_hotkeys() {
        assert_eq!(to_portal_trigger("Ctrl+Alt+M").unwrap(), "CTRL+ALT+m");
        assert_eq!(to_portal_trigger(" ctrl + alt + m ").unwrap(), "CTRL+ALT+m");
        assert_eq!(
            to_portal_trigger("Shift+Super+F9").unwrap(),
            "SHIFT+LOGO+F9"
        );
        assert_eq!(
            to_portal_trigger("Ctrl+Shift+KeyA").unwrap(),
            "CTRL+SHIFT+a"
        );
        assert_eq!(to_portal_trigger("Ctrl+Digit5").unwrap(), "CTRL+5");
        assert_eq!(
            to_portal_trigger("Ctrl+Alt+Enter").unwrap(),
            "CTRL+ALT+Return"
        );
        assert_eq!(to_portal_trigger("Meta+Space").unwrap(), "LOGO+space");
        assert_eq!(to_portal_trigger("Ctrl+ArrowUp").unwrap(), "CTRL+Up");
        assert_eq!(to_portal_trigger("ScrollLock").unwrap(), "Scroll_Lock");
        assert_eq!(to_portal_trigger("F13").unwrap(), "F13");
        assert_eq!(
            to_portal_trigger("Ctrl+Alt+PageDown").unwrap(),
            "CTRL+ALT+Page_Down"
        );
    }

    #[test]
    fn modifiers_come_out_in_spec_order_once() {
        assert_eq!(to_portal_trigger("Alt+Ctrl+m").unwrap(), "CTRL+ALT+m");
        assert_eq!(
            to_portal_trigger("Super+Shift+Alt+Ctrl+m").unwrap(),
            "CTRL+ALT+SHIFT+LOGO+m"
        );
        assert_eq!(to_portal_trigger("Ctrl+Control+m").unwrap(), "CTRL+m");
    }

    #[test]
    fn refuses_what_the_portal_cannot_name() {
        assert_eq!(to_portal_trigger("  "), Err(TriggerError::Empty));
        assert_eq!(
            to_portal_trigger("Ctrl+Alt+Banana"),
            Err(TriggerError::UnknownKey("Banana".into()))
        );
        assert_eq!(
            to_portal_trigger("Ctrl+Alt"),
            Err(TriggerError::NoKey("Ctrl+Alt".into()))
        );
        assert_eq!(
            to_portal_trigger("Ctrl+M+N"),
            Err(TriggerError::TwoKeys("Ctrl+M+N".into()))
        );
        assert_eq!(
            to_portal_trigger("F25"),
            Err(TriggerError::UnknownKey("F25".into()))
        );
        assert_eq!(
            to_portal_trigger("Ctrl+"),
            Err(TriggerError::UnknownKey(String::new()))
        );
    }
}
