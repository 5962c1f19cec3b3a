//! Portable pieces of the installer: command line, string encodings SetupAPI wants, and
//! hardware-ID matching. The SetupAPI calls live in `setupapi.rs` (Windows only).

use hardmute_wavert_model::miniport::HARDWARE_ID;

/// What the user asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// Create the root device (if absent) and install/update the driver from this INF.
    Install { inf: String },
    /// Remove every HardMute device node (the driver package stays in the store:
    /// `pnputil /delete-driver oemNN.inf /uninstall` removes it).
    Uninstall,
}

pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Command, String> {
    let mut it = args.into_iter();
    match (it.next().as_deref(), it.next(), it.next()) {
        (Some("install"), Some(inf), None) if inf.to_ascii_lowercase().ends_with(".inf") => {
            Ok(Command::Install { inf })
        }
        (Some("uninstall"), None, None) => Ok(Command::Uninstall),
        _ => Err("usage: hardmute-install install <path\\to\\hardmute.inf> | uninstall".into()),
    }
}

/// NUL-terminated UTF-16.
pub fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(Some(0)).collect()
}

/// REG_MULTI_SZ with one string (SPDRP_HARDWAREID): the string, NUL, and a final NUL.
pub fn multi_sz(s: &str) -> Vec<u16> {
    s.encode_utf16().chain([0, 0]).collect()
}

/// Whether a REG_MULTI_SZ hardware-ID list (as read back from a device) contains ours.
/// Device IDs compare case-insensitively.
pub fn has_our_hardware_id(list: &[u16]) -> bool {
    list.split(|&c| c == 0)
        .take_while(|s| !s.is_empty())
        .any(|s| String::from_utf16_lossy(s).eq_ignore_ascii_case(HARDWARE_ID))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args() {
        let a = |v: &[&str]| parse_args(v.iter().map(|s| s.to_string()));
        assert_eq!(
            a(&["install", "C:\\x\\hardmute.INF"]),
            Ok(Command::Install {
                inf: "C:\\x\\hardmute.INF".into()
            })
        );
        assert_eq!(a(&["uninstall"]), Ok(Command::Uninstall));
        assert!(a(&[]).is_err());
        assert!(a(&["install"]).is_err());
        assert!(
            a(&["install", "driver.sys"]).is_err(),
            "an INF, not the binary"
        );
        assert!(a(&["uninstall", "extra"]).is_err());
    }

    #[test]
    fn encodings() {
        assert_eq!(wide("ab"), vec![97, 98, 0]);
        let m = multi_sz(HARDWARE_ID);
        assert_eq!(m.len(), HARDWARE_ID.len() + 2);
        assert_eq!(&m[m.len() - 2..], &[0, 0]);
        assert!(has_our_hardware_id(&m));
    }

    #[test]
    fn hardware_id_matching() {
        let list: Vec<u16> = "PCI\\VEN_1\0root\\hardmutemic\0\0".encode_utf16().collect();
        assert!(
            has_our_hardware_id(&list),
            "case-insensitive, not first in the list"
        );
        let other: Vec<u16> = "Root\\HardMuteMicX\0Root\\Other\0\0"
            .encode_utf16()
            .collect();
        assert!(!has_our_hardware_id(&other));
        assert!(!has_our_hardware_id(&[]));
        // An empty string ends the list: nothing after it counts.
        let after_end: Vec<u16> = "\0Root\\HardMuteMic\0\0".encode_utf16().collect();
        assert!(!has_our_hardware_id(&after_end));
    }
}
