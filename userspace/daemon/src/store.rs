//! The persisted state: `state.toml` in the OS config dir.
//!
//! Fail closed: a missing file is a fresh install and starts muted; an unreadable or corrupt
//! file is logged, kept beside as `state.toml.bad` for the user to inspect, and the daemon starts
//! muted with default settings.

use hardmute_ipc::HotkeyMode;
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Overrides the config directory (tests use it).
pub const CONFIG_DIR_ENV: &str = "HARDMUTE_CONFIG_DIR";
pub const STATE_FILE: &str = "state.toml";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub muted: bool,
    /// The physical input; absent = system default.
    pub device: Option<String>,
    pub release_on_mute: bool,
    /// Start muted on every launch, whatever `muted` says.
    pub start_muted: bool,
    pub fade_ms: u32,
    /// The global hotkey; empty = none. (A string rather than an Option: TOML has no null, and
    /// an absent key must keep meaning "default", not "disabled".)
    pub hotkey: String,
    /// How the hotkey acts (toggle / push to talk).
    pub hotkey_mode: HotkeyMode,
    /// Whether HardMute has claimed the OS's default input, and the default it replaced
    /// (restored on uninstall). Absent = never claimed (a fresh install claims it).
    pub default_input: crate::default_input::Remembered,
}

impl Default for Settings {
    /// A fresh install: muted.
    fn default() -> Self {
        Self {
            muted: true,
            device: None,
            release_on_mute: false,
            start_muted: false,
            fade_ms: hardmute_core::gate::DEFAULT_FADE_MS,
            hotkey: "Ctrl+Alt+M".into(),
            hotkey_mode: HotkeyMode::Toggle,
            default_input: Default::default(),
        }
    }
}

impl Settings {
    /// The mute state to start the driver with.
    pub fn initially_muted(&self) -> bool {
        self.muted || self.start_muted
    }

    pub fn hotkey(&self) -> Option<&str> {
        Some(self.hotkey.as_str()).filter(|h| !h.is_empty())
    }
}

/// Where the loaded settings came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// No file: first start.
    Fresh,
    Restored,
    /// The file could not be read or parsed; it was moved to `bad_copy` (when that worked).
    Corrupt {
        reason: String,
        bad_copy: Option<PathBuf>,
    },
}

#[derive(Clone, Debug)]
pub struct StateStore {
    path: PathBuf,
}

impl StateStore {
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            path: dir.join(STATE_FILE),
        }
    }

    /// `$HARDMUTE_CONFIG_DIR`, else the OS config dir (e.g. `~/.config/hardmute`).
    pub fn from_env() -> io::Result<Self> {
        if let Some(dir) = std::env::var_os(CONFIG_DIR_ENV).filter(|d| !d.is_empty()) {
            return Ok(Self::in_dir(Path::new(&dir)));
        }
        let dirs = directories::ProjectDirs::from("", "", "hardmute").ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "no home directory to keep the hardmute state in",
            )
        })?;
        Ok(Self::in_dir(dirs.config_dir()))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn bad_path(&self) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_owned();
        name.push(".bad");
        self.path.with_file_name(name)
    }

    pub fn load(&self) -> (Settings, Origin) {
        let text = match fs::read(&self.path) {
            Ok(bytes) => String::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                log::info!(
                    "no saved state at {}: first start, starting muted",
                    self.path.display()
                );
                return (Settings::default(), Origin::Fresh);
            }
            Err(e) => Err(format!("cannot read it: {e}")),
        };
        let reason =
            match text.and_then(|t| toml::from_str::<Settings>(&t).map_err(|e| e.to_string())) {
                Ok(settings) => return (settings, Origin::Restored),
                Err(reason) => reason,
            };
        let bad = self.bad_path();
        let bad_copy = match fs::rename(&self.path, &bad) {
            Ok(()) => Some(bad),
            Err(e) => {
                log::error!(
                    "could not move the bad state file aside to {}: {e}",
                    bad.display()
                );
                None
            }
        };
        log::error!(
            "saved state {} is unusable ({}); starting MUTED with default settings{}",
            self.path.display(),
            reason.trim(),
            bad_copy
                .as_ref()
                .map(|p| format!("; the bad file is kept as {}", p.display()))
                .unwrap_or_default()
        );
        let settings = Settings {
            muted: true,
            ..Settings::default()
        };
        (settings, Origin::Corrupt { reason, bad_copy })
    }

    /// Writes atomically (temp file + rename) so a crash never leaves half a file.
    pub fn save(&self, settings: &Settings) -> io::Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir)?;
        let text = toml::to_string(settings).map_err(io::Error::other)?;
        let tmp = self.path.with_extension("toml.tmp");
        {
            let mut file = fs::File::create(&tmp)?;
            file.write_all(b"# hardmute state, written by hardmuted\n")?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
        }
        fs::rename(&tmp, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_start_is_muted_and_a_saved_state_comes_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::in_dir(&dir.path().join("nested"));
        let (settings, origin) = store.load();
        assert_eq!(origin, Origin::Fresh);
        assert!(settings.muted && settings.initially_muted());

        let saved = Settings {
            muted: false,
            device: Some("mic 2".into()),
            release_on_mute: true,
            start_muted: false,
            fade_ms: 12,
            hotkey: String::new(),
            hotkey_mode: HotkeyMode::PushToTalk,
            default_input: crate::default_input::Remembered {
                claimed: true,
                previous: Some("alsa_input.mic".into()),
            },
        };
        store.save(&saved).unwrap();
        let (loaded, origin) = store.load();
        assert_eq!(origin, Origin::Restored);
        assert_eq!(loaded, saved);
        assert_eq!(loaded.hotkey(), None, "a disabled hotkey stays disabled");
        assert!(!loaded.initially_muted());
        assert!(Settings {
            start_muted: true,
            ..saved
        }
        .initially_muted());
    }

    #[test]
    fn corrupt_file_starts_muted_and_is_kept_as_bad() {
        for garbage in [
            "muted = \"nope\"\n",
            "muted = false\n[[[",
            "\u{0}\u{1}binary",
        ] {
            let dir = tempfile::tempdir().unwrap();
            let store = StateStore::in_dir(dir.path());
            fs::write(store.path(), garbage).unwrap();
            let (settings, origin) = store.load();
            assert!(settings.muted, "{garbage:?}");
            let Origin::Corrupt {
                bad_copy: Some(bad),
                ..
            } = origin
            else {
                panic!("{origin:?}")
            };
            assert_eq!(fs::read_to_string(bad).unwrap(), garbage);
            assert!(!store.path().exists());
        }
    }

    #[test]
    fn missing_keys_take_defaults_and_unknown_keys_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::in_dir(dir.path());
        fs::write(store.path(), "muted = false\nfuture_option = 3\n").unwrap();
        let (settings, origin) = store.load();
        assert_eq!(origin, Origin::Restored);
        assert_eq!(
            settings,
            Settings {
                muted: false,
                ..Settings::default()
            }
        );
    }
}
