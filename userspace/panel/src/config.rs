//! `panel.toml`: where an older panel kept the hotkey and its mode. The daemon keeps them now
//! (`state.toml`, `hardmute set hotkey`), so the panel only reads this file once, hands it to
//! the daemon and renames it `panel.toml.migrated` ([`ConfigFile::take_legacy`]).

use crate::hotkey::{HotkeyMode, HotkeySpec};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Same override the daemon uses, so tests keep both files in one temporary directory.
pub const CONFIG_DIR_ENV: &str = "HARDMUTE_CONFIG_DIR";
pub const PANEL_FILE: &str = "panel.toml";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PanelConfig {
    /// The hotkey as the user typed it (`Ctrl+Alt+M`); empty = no hotkey.
    pub hotkey: String,
    pub mode: HotkeyMode,
}

impl Default for PanelConfig {
    fn default() -> Self {
        Self {
            hotkey: HotkeySpec::DEFAULT.into(),
            mode: HotkeyMode::Toggle,
        }
    }
}

#[derive(Clone, Debug)]
pub struct ConfigFile {
    path: PathBuf,
}

impl ConfigFile {
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            path: dir.join(PANEL_FILE),
        }
    }

    /// `$HARDMUTE_CONFIG_DIR/panel.toml`, else the OS config dir (`~/.config/hardmute/`).
    pub fn from_env() -> io::Result<Self> {
        if let Some(dir) = std::env::var_os(CONFIG_DIR_ENV).filter(|d| !d.is_empty()) {
            return Ok(Self::in_dir(Path::new(&dir)));
        }
        let dirs = directories::ProjectDirs::from("", "", "hardmute").ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, "no home directory for panel.toml")
        })?;
        Ok(Self::in_dir(dirs.config_dir()))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved settings; `None` when there is no file yet. A broken file is logged and
    /// ignored (the defaults are harmless: a hotkey is a convenience, not a safety setting).
    pub fn load(&self) -> Option<PanelConfig> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
            Err(e) => {
                log::warn!("cannot read {}: {e}; using defaults", self.path.display());
                return None;
            }
        };
        match toml::from_str(&text) {
            Ok(config) => Some(config),
            Err(e) => {
                log::warn!("{} is not valid: {e}; using defaults", self.path.display());
                None
            }
        }
    }

    /// The settings of a leftover panel.toml, once: the file is renamed `panel.toml.migrated`
    /// (kept for the user to look at), so the next start finds nothing. `None` when there is no
    /// file; a broken one is renamed too and yields nothing.
    pub fn take_legacy(&self) -> Option<PanelConfig> {
        if !self.path.exists() {
            return None;
        }
        let config = self.load();
        let mut migrated = self.path.clone().into_os_string();
        migrated.push(".migrated");
        if let Err(e) = fs::rename(&self.path, &migrated) {
            log::warn!("cannot rename {}: {e}", self.path.display());
            return None; // not migrated: better than migrating on every start
        }
        config
    }

    /// Writes atomically (temporary file + rename), so a crash never leaves half a file.
    pub fn save(&self, config: &PanelConfig) -> io::Result<()> {
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir)?;
        }
        let text = toml::to_string(config).map_err(io::Error::other)?;
        let tmp = self.path.with_extension("toml.tmp");
        fs::write(&tmp, text)?;
        fs::rename(&tmp, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_loads_the_hotkey_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let file = ConfigFile::in_dir(dir.path());
        assert_eq!(file.load(), None, "no file yet");
        let config = PanelConfig {
            hotkey: "Ctrl+Shift+F9".into(),
            mode: HotkeyMode::PushToTalk,
        };
        file.save(&config).unwrap();
        assert_eq!(file.load(), Some(config));
    }

    #[test]
    fn a_leftover_file_is_taken_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = ConfigFile::in_dir(dir.path());
        assert_eq!(file.take_legacy(), None, "nothing to migrate");
        let config = PanelConfig {
            hotkey: "Ctrl+Alt+K".into(),
            mode: HotkeyMode::PushToTalk,
        };
        file.save(&config).unwrap();
        assert_eq!(file.take_legacy(), Some(config));
        assert_eq!(file.take_legacy(), None, "only once");
        assert!(dir.path().join("panel.toml.migrated").exists());
    }

    #[test]
    fn a_broken_file_falls_back_to_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = ConfigFile::in_dir(dir.path());
        fs::write(file.path(), "mode = 42\n[[[").unwrap();
        assert_eq!(file.load(), None);
    }
}
