//! Portable pieces of the installer: command line, string encodings SetupAPI wants, and
//! hardware-ID matching. The SetupAPI calls live in `setupapi.rs` (Windows only).

use hardmute_windows_model::ioctl::OWNER_SID_VALUE;
use hardmute_windows_model::miniport::HARDWARE_ID;

/// The driver's service (the INF's `AddService` name): its key holds the owner record.
pub const SERVICE_NAME: &str = "HardMute";

/// The registry key (under HKEY_LOCAL_MACHINE) where the driver reads the owner it serves:
/// REG_BINARY [`OWNER_SID_VALUE`], the owner's user SID, read once when the driver loads.
pub fn owner_key() -> String {
    format!("SYSTEM\\CurrentControlSet\\Services\\{SERVICE_NAME}")
}

/// The value name of the owner record (re-exported from the driver's contract).
pub const OWNER_VALUE: &str = OWNER_SID_VALUE;

/// True for a user SID in string form as Windows writes it (`S-1-5-21-…`): the owner must be a
/// real account, never a well-known group or a malformed string.
pub fn is_user_sid(sid: &str) -> bool {
    let mut parts = sid.split('-');
    parts.next() == Some("S") && parts.next() == Some("1") && parts.next() == Some("5") && {
        let rest: Vec<&str> = parts.collect();
        rest.len() >= 2
            && rest[0] == "21"
            && rest
                .iter()
                .all(|p| !p.is_empty() && p.len() <= 10 && p.bytes().all(|b| b.is_ascii_digit()))
    }
}

/// What the user asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// Create the root device (if absent) and install/update the driver from this INF;
    /// `owner`: the user SID the driver will serve (recorded in its service key first).
    Install { inf: String, owner: Option<String> },
    /// Remove every HardMute device node (the driver package stays in the store:
    /// `pnputil /delete-driver oemNN.inf /uninstall` removes it).
    Uninstall,
    /// One setup: the per-user MSI as the user, then the driver elevated (see [`setup_plan`]).
    Setup { msi: String, inf: String },
    /// Undo [`Command::Setup`]: the driver elevated first, then the MSI as the user.
    Remove { msi: String },
}

/// One step of the combined setup, run in order; a failed step runs its `undo_on_failure`
/// steps (already done work rolled back) and stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `msiexec.exe ARGS`, as the user who started the setup (per-user MSI: the user's profile).
    Msiexec(Vec<String>),
    /// This program again, elevated (UAC prompt), with ARGS.
    Elevated(Vec<String>),
}

/// The steps of `setup` / `remove`. The per-user MSI must run as the user, never from the
/// elevated process: an elevated process may be another account (over-the-shoulder UAC), whose
/// profile would get the daemon and panel. So only the driver step is elevated, and it is told
/// the SID of the user who started the setup (`user_sid`), the owner it records.
pub fn setup_plan(cmd: &Command, user_sid: &str) -> Option<Vec<(Step, Vec<Step>)>> {
    let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    match cmd {
        Command::Setup { msi, inf } => Some(vec![
            (Step::Msiexec(owned(&["/i", msi, "/qb"])), Vec::new()),
            (
                Step::Elevated(owned(&["install", inf, "--owner", user_sid])),
                // No driver: take the user-space part out again, so the machine never has a
                // daemon without its device.
                vec![Step::Msiexec(owned(&["/x", msi, "/qb"]))],
            ),
        ]),
        Command::Remove { msi } => Some(vec![
            (Step::Elevated(owned(&["uninstall"])), Vec::new()),
            (Step::Msiexec(owned(&["/x", msi, "/qb"])), Vec::new()),
        ]),
        _ => None,
    }
}

pub const USAGE: &str = "usage: hardmute-install install <path\\to\\hardmute.inf> [--owner <user SID>] | uninstall   (elevated)
       hardmute-install setup <HardMute.msi> <hardmute.inf> | remove <HardMute.msi>   (as the user)";

pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Command, String> {
    let mut it = args.into_iter();
    match (it.next().as_deref(), it.next(), it.next()) {
        (Some("install"), Some(inf), next) if inf.to_ascii_lowercase().ends_with(".inf") => {
            let owner = match (next.as_deref(), it.next(), it.next()) {
                (None, None, None) => None,
                (Some("--owner"), Some(sid), None) if is_user_sid(&sid) => Some(sid),
                (Some("--owner"), Some(sid), None) => {
                    return Err(format!("{sid:?} is not a user's SID (S-1-5-21-...)"))
                }
                _ => return Err(USAGE.into()),
            };
            Ok(Command::Install { inf, owner })
        }
        (Some("uninstall"), None, None) => Ok(Command::Uninstall),
        (Some("remove"), Some(msi), None) if msi.to_ascii_lowercase().ends_with(".msi") => {
            Ok(Command::Remove { msi })
        }
        (Some("setup"), Some(msi), Some(inf))
            if msi.to_ascii_lowercase().ends_with(".msi")
                && inf.to_ascii_lowercase().ends_with(".inf")
                && it.next().is_none() =>
        {
            Ok(Command::Setup { msi, inf })
        }
        _ => Err(USAGE.into()),
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

    const USER: &str = "S-1-5-21-3623811015-3361044348-30300820-1013";

    #[test]
    fn the_owner_record_is_where_the_driver_reads_it() {
        // The service the INF adds is the key the driver's registry path names.
        let inf = include_str!("../hardmute.inf");
        assert!(
            inf.lines().any(|l| l
                .replace(' ', "")
                .starts_with(&format!("AddService={SERVICE_NAME},"))),
            "hardmute.inf adds no service named {SERVICE_NAME}"
        );
        assert_eq!(owner_key(), "SYSTEM\\CurrentControlSet\\Services\\HardMute");
        assert_eq!(OWNER_VALUE, "OwnerSid");
        assert!(is_user_sid(USER));
    }

    #[test]
    fn args() {
        let a = |v: &[&str]| parse_args(v.iter().map(|s| s.to_string()));
        assert_eq!(
            a(&["install", "C:\\x\\hardmute.INF"]),
            Ok(Command::Install {
                inf: "C:\\x\\hardmute.INF".into(),
                owner: None
            })
        );
        assert_eq!(
            a(&["install", "h.inf", "--owner", USER]),
            Ok(Command::Install {
                inf: "h.inf".into(),
                owner: Some(USER.into())
            })
        );
        // A group (Everyone, Users) or garbage can never become the owner.
        for bad in [
            "S-1-1-0",
            "S-1-5-32-545",
            "S-1-5-21",
            "S-1-5-21-x-1",
            "alice",
            "",
        ] {
            assert!(a(&["install", "h.inf", "--owner", bad]).is_err(), "{bad}");
        }
        assert!(a(&["install", "h.inf", "--owner"]).is_err());
        assert!(a(&["install", "h.inf", "--owner", USER, "x"]).is_err());
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
    fn setup_args() {
        let a = |v: &[&str]| parse_args(v.iter().map(|s| s.to_string()));
        assert_eq!(
            a(&["setup", "HardMute.msi", "hardmute.inf"]),
            Ok(Command::Setup {
                msi: "HardMute.msi".into(),
                inf: "hardmute.inf".into()
            })
        );
        assert!(a(&["setup", "hardmute.inf", "HardMute.msi"]).is_err());
        assert!(a(&["setup", "HardMute.msi"]).is_err());
        assert!(a(&["setup", "HardMute.msi", "hardmute.inf", "x"]).is_err());
        assert_eq!(
            a(&["remove", "HardMute.msi"]),
            Ok(Command::Remove {
                msi: "HardMute.msi".into()
            })
        );
    }

    #[test]
    fn setup_runs_the_msi_as_the_user_and_only_the_driver_elevated() {
        let plan = setup_plan(
            &Command::Setup {
                msi: "H.msi".into(),
                inf: "h.inf".into(),
            },
            USER,
        )
        .unwrap();
        assert_eq!(plan.len(), 2);
        assert_eq!(
            plan[0].0,
            Step::Msiexec(vec!["/i".into(), "H.msi".into(), "/qb".into()])
        );
        assert_eq!(
            plan[1].0,
            Step::Elevated(vec![
                "install".into(),
                "h.inf".into(),
                "--owner".into(),
                USER.into()
            ])
        );
        // A refused or failed driver install takes the user-space part out again.
        assert_eq!(
            plan[1].1,
            vec![Step::Msiexec(vec![
                "/x".into(),
                "H.msi".into(),
                "/qb".into()
            ])]
        );
        let remove = setup_plan(
            &Command::Remove {
                msi: "H.msi".into(),
            },
            USER,
        )
        .unwrap();
        assert_eq!(remove[0].0, Step::Elevated(vec!["uninstall".into()]));
        assert_eq!(
            remove[1].0,
            Step::Msiexec(vec!["/x".into(), "H.msi".into(), "/qb".into()])
        );
        assert!(setup_plan(&Command::Uninstall, USER).is_none());
        // Nothing elevated ever runs the MSI.
        for (step, undo) in plan.iter().chain(&remove) {
            for s in std::iter::once(step).chain(undo) {
                if let Step::Elevated(args) = s {
                    assert!(!args.iter().any(|a| a.ends_with(".msi")));
                }
            }
        }
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
