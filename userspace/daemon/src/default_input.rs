//! HardMute as the OS's default input (docs/design.md invariant 7).
//!
//! Most apps record "the default" (conferencing apps, browsers unless told otherwise), so the
//! gate protects nothing unless the HardMute Microphone *is* the default. The rules, the same on
//! every OS (this module decides; an [`DefaultInputOs`] per OS reads and sets the default):
//!
//! - **Claim once.** The first time hardmuted runs after an install (nothing remembered yet),
//!   HardMute becomes the default input. The default it replaced is remembered and becomes
//!   HardMute's physical source (unless the user already chose one), so the user keeps hearing
//!   through the same mic, now gated.
//! - **Never fight.** If the user later picks another default, hardmuted leaves it, but every
//!   status says plainly that apps on the default are *not protected* and names the one-step fix
//!   (`hardmute protect`; the panel's status line names it), which claims the default again.
//! - **Restore on uninstall.** `hardmute uninstall` asks hardmuted to give the default back to
//!   the remembered one (only if HardMute still holds it) and forget the claim, so a reinstall
//!   claims again.
//!
//! The OS layers (each in its backend crate, picked by [`crate::backend::default_input`]): Linux
//! writes `default.configured.audio.source` in PipeWire's `default` metadata (what
//! `pactl set-default-source` and desktop settings write) and reads the effective
//! `default.audio.source` (`hardmute-backend-linux`'s `default_input`); macOS sets the HAL's
//! default input device (macOS has no separate system input); Windows the default capture
//! endpoint for all three roles through IPolicyConfig (`hardmute-backend-windows`'s
//! `policy_config`). The macOS and Windows
//! layers are type-checked for their targets and, on Windows, run under wine up to the point wine
//! supports; they have not run on a real Mac or Windows.

use serde::{Deserialize, Serialize};

/// What hardmuted remembers about the default input (persisted with the settings).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Remembered {
    /// HardMute has claimed the default once since it was installed; it does not claim again
    /// on its own (the user's later choice stands).
    pub claimed: bool,
    /// The default input HardMute replaced, restored on uninstall.
    pub previous: Option<String>,
}

/// What the OS's default input is now, as status reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefaultStatus {
    /// The OS's default input (stable id); `None` = none or unknown.
    pub name: Option<String>,
    /// Apps that record "the default" record HardMute.
    pub protected: bool,
}

/// One decision: what to change, if anything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Make this input the OS default.
    pub set_default: Option<String>,
    /// The new remembered state (`None` = unchanged).
    pub remember: Option<Remembered>,
    /// Feed HardMute from this physical input (`None` = keep the current choice).
    pub feed_from: Option<String>,
}

/// The OS side (one per OS backend crate), re-exported from `hardmute-backend`.
pub use hardmute_backend::DefaultInputOs;

fn is_hardmute(name: Option<&str>, hardmute: &str) -> bool {
    name == Some(hardmute)
}

/// At daemon start (HardMute's device exists): claim the default once after an install.
/// `device` is the user's chosen physical source (`None` = not chosen).
pub fn on_start(
    remembered: &Remembered,
    current: Option<&str>,
    hardmute: &str,
    device: Option<&str>,
) -> Plan {
    if remembered.claimed {
        // The user's later choice stands; status reports it.
        return Plan::default();
    }
    claim(current, hardmute, device, None)
}

/// `hardmute protect`: make HardMute the default again. If the user had picked another
/// physical mic as default, that mic now feeds HardMute (they chose it), unless they chose
/// HardMute's source explicitly (a `device` other than the remembered previous default).
pub fn protect(
    remembered: &Remembered,
    current: Option<&str>,
    hardmute: &str,
    device: Option<&str>,
) -> Plan {
    claim(current, hardmute, device, remembered.previous.as_deref())
}

fn claim(current: Option<&str>, hardmute: &str, device: Option<&str>, ours: Option<&str>) -> Plan {
    if is_hardmute(current, hardmute) {
        return Plan {
            set_default: None,
            remember: Some(Remembered {
                claimed: true,
                previous: ours.map(str::to_owned),
            }),
            feed_from: None,
        };
    }
    // The device was the user's own choice only if it is not the one we pinned last time.
    let user_chose_device = device.is_some() && device != ours;
    let previous = current
        .map(str::to_owned)
        .or_else(|| ours.map(str::to_owned));
    Plan {
        set_default: Some(hardmute.to_owned()),
        remember: Some(Remembered {
            claimed: true,
            previous: previous.clone(),
        }),
        feed_from: if user_chose_device {
            None
        } else {
            current.map(str::to_owned)
        },
    }
}

/// `hardmute uninstall`: give the default back (only if HardMute still holds it) and forget
/// the claim.
pub fn restore(remembered: &Remembered, current: Option<&str>, hardmute: &str) -> Plan {
    let set_default = if is_hardmute(current, hardmute) {
        remembered.previous.clone()
    } else {
        None // the user moved on; leave their choice
    };
    Plan {
        set_default,
        remember: Some(Remembered::default()),
        feed_from: None,
    }
}

/// Status: is the default HardMute?
pub fn status(current: Option<&str>, hardmute: &str) -> DefaultStatus {
    DefaultStatus {
        name: current.map(str::to_owned),
        protected: is_hardmute(current, hardmute),
    }
}

/// An in-memory OS default (the simulated backend; tests).
#[derive(Debug, Default)]
pub struct MemoryDefault {
    pub current: Option<String>,
    pub hardmute: String,
    /// Every `set`, in order.
    pub sets: Vec<String>,
    /// This many `set`s fail first (a session manager not up yet).
    pub failing_sets: usize,
}

impl DefaultInputOs for MemoryDefault {
    fn current(&mut self) -> Result<Option<String>, String> {
        Ok(self.current.clone())
    }
    fn set(&mut self, name: &str) -> Result<(), String> {
        if self.failing_sets > 0 {
            self.failing_sets -= 1;
            return Err("the session manager is not up".into());
        }
        self.sets.push(name.to_owned());
        self.current = Some(name.to_owned());
        Ok(())
    }
    fn hardmute_id(&self) -> &str {
        &self.hardmute
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HM: &str = "hardmute_mic";

    fn rem(claimed: bool, previous: Option<&str>) -> Remembered {
        Remembered {
            claimed,
            previous: previous.map(str::to_owned),
        }
    }

    #[test]
    fn first_start_claims_the_default_and_feeds_from_the_one_it_replaced() {
        let plan = on_start(&Remembered::default(), Some("alsa_mic"), HM, None);
        assert_eq!(plan.set_default.as_deref(), Some(HM));
        assert_eq!(plan.remember, Some(rem(true, Some("alsa_mic"))));
        assert_eq!(plan.feed_from.as_deref(), Some("alsa_mic"));
    }

    #[test]
    fn first_start_keeps_a_physical_source_the_user_chose() {
        let plan = on_start(
            &Remembered::default(),
            Some("alsa_mic"),
            HM,
            Some("usb_mic"),
        );
        assert_eq!(plan.set_default.as_deref(), Some(HM));
        assert_eq!(plan.remember, Some(rem(true, Some("alsa_mic"))));
        assert_eq!(plan.feed_from, None);
    }

    #[test]
    fn first_start_with_no_default_still_claims() {
        let plan = on_start(&Remembered::default(), None, HM, None);
        assert_eq!(plan.set_default.as_deref(), Some(HM));
        assert_eq!(plan.remember, Some(rem(true, None)));
        assert_eq!(plan.feed_from, None);
    }

    #[test]
    fn already_hardmute_records_the_claim_without_setting() {
        let plan = on_start(&Remembered::default(), Some(HM), HM, None);
        assert_eq!(plan.set_default, None);
        assert_eq!(plan.remember, Some(rem(true, None)));
    }

    #[test]
    fn after_the_claim_a_user_choice_is_not_fought() {
        let plan = on_start(
            &rem(true, Some("alsa_mic")),
            Some("usb_mic"),
            HM,
            Some("alsa_mic"),
        );
        assert_eq!(plan, Plan::default());
        let s = status(Some("usb_mic"), HM);
        assert!(!s.protected);
        assert_eq!(s.name.as_deref(), Some("usb_mic"));
        assert!(status(Some(HM), HM).protected);
        assert!(!status(None, HM).protected);
    }

    #[test]
    fn protect_reclaims_and_follows_the_mic_the_user_picked() {
        // We had pinned alsa_mic (the previous default); the user then chose usb_mic as default.
        let plan = protect(
            &rem(true, Some("alsa_mic")),
            Some("usb_mic"),
            HM,
            Some("alsa_mic"),
        );
        assert_eq!(plan.set_default.as_deref(), Some(HM));
        assert_eq!(plan.remember, Some(rem(true, Some("usb_mic"))));
        assert_eq!(plan.feed_from.as_deref(), Some("usb_mic"));
        // ...but a source the user chose by hand stays.
        let plan = protect(
            &rem(true, Some("alsa_mic")),
            Some("usb_mic"),
            HM,
            Some("bt_mic"),
        );
        assert_eq!(plan.feed_from, None);
        // Protected already: nothing to set, the remembered previous default is kept.
        let plan = protect(&rem(true, Some("alsa_mic")), Some(HM), HM, None);
        assert_eq!(plan.set_default, None);
        assert_eq!(plan.remember, Some(rem(true, Some("alsa_mic"))));
    }

    #[test]
    fn restore_gives_back_the_previous_default_only_while_hardmute_holds_it() {
        let plan = restore(&rem(true, Some("alsa_mic")), Some(HM), HM);
        assert_eq!(plan.set_default.as_deref(), Some("alsa_mic"));
        assert_eq!(plan.remember, Some(Remembered::default()));
        let plan = restore(&rem(true, Some("alsa_mic")), Some("usb_mic"), HM);
        assert_eq!(plan.set_default, None);
        assert_eq!(plan.remember, Some(Remembered::default()));
        // Nothing remembered (no previous default): nothing to give back.
        assert_eq!(restore(&rem(true, None), Some(HM), HM).set_default, None);
    }

    #[test]
    fn memory_default_records_sets() {
        let mut os = MemoryDefault {
            current: Some("a".into()),
            hardmute: HM.into(),
            sets: Vec::new(),
            failing_sets: 0,
        };
        os.set(HM).unwrap();
        assert_eq!(os.current().unwrap().as_deref(), Some(HM));
        assert_eq!(os.sets, vec![HM.to_owned()]);
    }
}
