//! Start with the session: the XDG autostart entry (Linux and the BSDs). Installers ship
//! `data/hardmute-panel.desktop` (the same text, tested) in `/etc/xdg/autostart/`;
//! `hardmute-panel --install-autostart` writes a per-user copy with this binary's path.
//! macOS (LaunchAgent) and Windows (startup entry) are the installers' part.

use std::io;
use std::path::{Path, PathBuf};

pub const DESKTOP_FILE: &str = "hardmute-panel.desktop";

/// The entry's text. `--hidden` starts with only the tray and the hotkey.
pub fn desktop_entry(exec: &str) -> String {
    format!(
        "[Desktop Entry]\n\
         Type=Application\n\
         Name=HardMute\n\
         GenericName=Microphone hard mute\n\
         Comment=Tray icon and global hotkey for the HardMute Microphone\n\
         Exec={exec} --hidden\n\
         Icon=audio-input-microphone\n\
         Terminal=false\n\
         Categories=AudioVideo;Audio;Utility;\n\
         X-GNOME-Autostart-enabled=true\n\
         X-GNOME-Autostart-Delay=2\n\
         X-KDE-autostart-after=panel\n"
    )
}

/// `$XDG_CONFIG_HOME/autostart` (default `~/.config/autostart`).
pub fn user_autostart_dir() -> io::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return Ok(Path::new(&dir).join("autostart"));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "HOME is not set"))?;
    Ok(Path::new(&home).join(".config").join("autostart"))
}

/// Writes the entry into `dir`, returning its path.
pub fn install(dir: &Path, exec: &str) -> io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(DESKTOP_FILE);
    std::fs::write(&path, desktop_entry(exec))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_is_a_valid_autostart_application_started_hidden() {
        let text = desktop_entry("/usr/bin/hardmute-panel");
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("[Desktop Entry]"));
        for line in lines {
            let (key, value) = line.split_once('=').expect("key=value");
            assert!(!key.is_empty() && !value.is_empty(), "{line}");
        }
        assert!(text.contains("\nType=Application\n"));
        assert!(text.contains("\nExec=/usr/bin/hardmute-panel --hidden\n"));
    }

    #[test]
    fn the_shipped_file_matches_the_template() {
        // data/hardmute-panel.desktop is what installers copy to /etc/xdg/autostart/.
        assert_eq!(
            include_str!("../data/hardmute-panel.desktop"),
            desktop_entry("hardmute-panel")
        );
    }

    #[test]
    fn install_writes_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = install(&dir.path().join("autostart"), "hardmute-panel").unwrap();
        assert_eq!(
            std::fs::read_to_string(path).unwrap(),
            desktop_entry("hardmute-panel")
        );
    }
}
