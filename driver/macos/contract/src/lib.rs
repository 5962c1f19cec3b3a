//! The plug-in ↔ daemon contract on macOS, defined once.
//!
//! The HAL plug-in (`driver/macos`, running in coreaudiod) publishes devices and a custom
//! property; hardmuted (its macOS backend, `userspace/backend/macos`) finds the devices by UID and
//! talks to the property. Both import these constants, so a rename on one side is a compile
//! error on the other instead of a device that is never found on a Mac. Dependency-free and
//! `no_std` so the plug-in can use it as it is.
#![cfg_attr(not(test), no_std)]

/// The UID prefix of every device the plug-in publishes (so the daemon never captures its own).
pub const OWN_UID_PREFIX: &str = "org.hardmute.";
/// The virtual microphone apps record from.
pub const MIC_UID: &str = "org.hardmute.microphone";
/// The hidden output device the bridge plays the physical mic into.
pub const FEED_UID: &str = "org.hardmute.feed";
/// The model UID both devices report.
pub const MODEL_UID: &str = "org.hardmute.model";

/// Device names as apps see them.
pub const MIC_NAME: &str = "HardMute Microphone";
pub const FEED_NAME: &str = "HardMute Feed";
pub const MANUFACTURER: &str = "HardMute";

/// The custom property carrying hard mute (`'hmut'`): a CFBoolean property list on the
/// microphone device. Anyone may set it true; only the owner may set it false.
pub const HARD_MUTE_SELECTOR: u32 = u32::from_be_bytes(*b"hmut");

/// The bundle id hardmuted runs under: its embedded `installer/macos/daemon-Info.plist`, which
/// `driver/macos/plugin/tests/installer_plists.rs` checks against this constant.
pub const DAEMON_BUNDLE_ID: &str = "org.hardmute.daemon";

/// The plug-in bundle's own id (`installer/macos/Info.plist.in`, checked by
/// `driver/macos/plugin/tests/installer_plists.rs`); also the os_log subsystem the plug-in logs under,
/// so `log stream --predicate 'subsystem == "org.hardmute.driver"'` shows its messages.
pub const DRIVER_BUNDLE_ID: &str = "org.hardmute.driver";

/// True for a UID of one of the plug-in's own devices.
pub fn is_own_uid(uid: &str) -> bool {
    uid.starts_with(OWN_UID_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_devices_are_recognised_as_our_own_and_nothing_else_is() {
        assert!(is_own_uid(MIC_UID) && is_own_uid(FEED_UID) && is_own_uid(MODEL_UID));
        assert!(!is_own_uid("BuiltInMicrophoneDevice"));
        assert!(!is_own_uid("org.hardmutex"));
        assert_ne!(MIC_UID, FEED_UID);
    }

    #[test]
    fn the_selector_is_the_four_characters_hmut() {
        assert_eq!(HARD_MUTE_SELECTOR.to_be_bytes(), *b"hmut");
    }
}
