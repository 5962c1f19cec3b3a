//! The persisted state: `state.toml` in the OS's per-user state directory
//! (`$XDG_STATE_HOME/hardmute`, i.e. `~/.local/state/hardmute` on Linux; Local AppData on Windows;
//! `~/Library/Application Support/hardmute` on macOS). A `state.toml` left in the config
//! directory by an older version is moved there once, on first start.
//!
//! Fail closed: a missing file is a fresh install and starts muted; an unreadable or corrupt
//! file is logged, kept beside as `state.toml.bad` for the user to inspect, and the daemon starts
//! muted with default settings. The directory is private (0700 on Unix) and the file 0600; the
//! daemon saves a mute *before* applying it and an unmute *after* (see `daemon.rs`), so a crash
//! in between restarts muted.

use hardmute_ipc::HotkeyMode;
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Overrides the directory of `state.toml` (tests use it). Its old name, kept so existing test
/// rigs and setups keep working; `HARDMUTE_STATE_DIR` wins if both are set.
pub const CONFIG_DIR_ENV: &str = "HARDMUTE_CONFIG_DIR";
/// Overrides the directory of `state.toml`.
pub const STATE_DIR_ENV: &str = "HARDMUTE_STATE_DIR";
pub const STATE_FILE: &str = "state.toml";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub muted: bool,
    /// The physical input; absent = system default.
    pub device: Option<String>,
    pub release_on_mute: bool,
    /// The guard held by hardmuted (macOS hog mode, Windows exclusive mode); off by default
    /// (docs/threat-model.md says why). Not used on Linux, whose guard is configuration files.
    pub guard: bool,
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
            guard: false,
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

    /// `$HARDMUTE_STATE_DIR`, else `$HARDMUTE_CONFIG_DIR`, else the OS state dir (migrating a
    /// `state.toml` from the OS config dir once).
    pub fn from_env() -> io::Result<Self> {
        for var in [STATE_DIR_ENV, CONFIG_DIR_ENV] {
            if let Some(dir) = std::env::var_os(var).filter(|d| !d.is_empty()) {
                return Ok(Self::in_dir(Path::new(&dir)));
            }
        }
        let dirs = directories::ProjectDirs::from("", "", "hardmute").ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "no home directory to keep the hardmute state in",
            )
        })?;
        // Linux: $XDG_STATE_HOME/hardmute; elsewhere there is no state dir: local app data.
        let state_dir = dirs.state_dir().unwrap_or(dirs.data_local_dir());
        let store = Self::in_dir(state_dir);
        store.migrate_from(&dirs.config_dir().join(STATE_FILE));
        Ok(store)
    }

    /// Moves a `state.toml` written by an older version at `old` here, once: only if there is
    /// none here yet. The copy is written (private, atomically) before the old file is removed,
    /// so a crash in between leaves both, and the next start uses this one.
    pub fn migrate_from(&self, old: &Path) -> bool {
        if old == self.path || self.path.exists() {
            return false;
        }
        let Ok(bytes) = fs::read(old) else {
            return false;
        };
        if let Err(e) = self.write_bytes(&bytes) {
            log::error!(
                "could not move the saved state from {} to {}: {e}",
                old.display(),
                self.path.display()
            );
            return false;
        }
        if let Err(e) = fs::remove_file(old) {
            log::warn!(
                "moved the saved state, but could not remove {}: {e}",
                old.display()
            );
        }
        log::info!(
            "moved the saved state from {} to {}",
            old.display(),
            self.path.display()
        );
        true
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
        let text = toml::to_string(settings).map_err(io::Error::other)?;
        let mut bytes = b"# hardmute state, written by hardmuted\n".to_vec();
        bytes.extend_from_slice(text.as_bytes());
        self.write_bytes(&bytes)
    }

    fn write_bytes(&self, bytes: &[u8]) -> io::Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        create_private_dir(dir)?;
        let tmp = self.path.with_extension("toml.tmp");
        {
            let mut file = create_private_file(&tmp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
        }
        fs::rename(&tmp, &self.path)?;
        // The rename is durable only once the directory entry is (best effort off Unix).
        #[cfg(unix)]
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

/// Creates the state directory (and parents) private to the user: 0700 on Unix. An existing
/// directory of ours that is open to others is tightened.
#[cfg(unix)]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let meta = fs::metadata(dir)?;
    if meta.mode() & 0o077 != 0 && meta.uid() == nix::unistd::geteuid().as_raw() {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    // Local AppData is private to the user by its inherited ACL.
    fs::create_dir_all(dir)
}

/// A new file readable and writable by the user only (0600 on Unix, whatever the umask).
fn create_private_file(path: &Path) -> io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let file = options.open(path)?;
        // A leftover temp file keeps its old mode: set it.
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        Ok(file)
    }
    #[cfg(not(unix))]
    options.open(path)
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
            guard: true,
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

    #[cfg(unix)]
    #[test]
    fn the_state_dir_is_0700_and_the_file_0600_whatever_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state").join("hardmute");
        let store = StateStore::in_dir(&state);
        // A umask of 0 would make default-mode files world-readable (0666) and dirs 0777. It is
        // process-wide, so the other tests' files are created under it briefly: harmless.
        use nix::sys::stat::{umask, Mode};
        let old = umask(Mode::empty());
        let saved = store.save(&Settings::default());
        umask(old);
        saved.unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&state), 0o700);
        assert_eq!(mode(store.path()), 0o600);
        // A directory someone loosened is tightened on the next save, the file stays 0600.
        fs::set_permissions(&state, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(store.path(), fs::Permissions::from_mode(0o644)).unwrap();
        store.save(&Settings::default()).unwrap();
        assert_eq!(mode(&state), 0o700);
        assert_eq!(mode(store.path()), 0o600);
    }

    #[test]
    fn an_old_state_file_in_the_config_dir_is_moved_once() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("config").join(STATE_FILE);
        fs::create_dir_all(old.parent().unwrap()).unwrap();
        fs::write(&old, "muted = false\nfade_ms = 7\n").unwrap();
        let store = StateStore::in_dir(&dir.path().join("state"));
        assert!(store.migrate_from(&old));
        assert!(!old.exists(), "the old file is gone");
        let (settings, origin) = store.load();
        assert_eq!(origin, Origin::Restored);
        assert_eq!((settings.muted, settings.fade_ms), (false, 7));
        // Once: a later old file never overwrites the state that is now kept here.
        fs::write(&old, "muted = false\nfade_ms = 9\n").unwrap();
        store
            .save(&Settings {
                muted: true,
                ..settings
            })
            .unwrap();
        assert!(!store.migrate_from(&old));
        assert!(store.load().0.muted);
        assert_eq!(store.load().0.fade_ms, 7);
        assert!(old.exists(), "left alone");
        // No old file: nothing to do.
        let fresh = StateStore::in_dir(&dir.path().join("fresh"));
        assert!(!fresh.migrate_from(&dir.path().join("nothing").join(STATE_FILE)));
        assert_eq!(fresh.load().1, Origin::Fresh);
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
