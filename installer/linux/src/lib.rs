//! Per-user install of the HardMute daemon on Linux (`hardmute install` / `uninstall`).
//!
//! `install` writes a systemd user unit into `~/.config/systemd/user/`, enables it the way
//! `systemctl --user enable` does (a symlink in `default.target.wants/`) and records what it
//! wrote in a manifest; `uninstall` removes exactly what the manifest lists (and the folders it
//! created, when empty) and nothing else. Both work on any home folder, so they are tested in a
//! temporary one; `activate` / `deactivate` then talk to the user's systemd when there is one.
//!
//! The unit restarts the daemon when it dies: the HardMute Microphone stays in the graph
//! meanwhile (delivering zeros), and the daemon comes back in its persisted mute state.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const UNIT_NAME: &str = "hardmuted.service";
const MANIFEST: &str = ".local/share/hardmute/installed-files";

/// What the unit starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitOptions {
    /// Absolute path of `hardmuted`.
    pub exec: PathBuf,
    pub args: Vec<String>,
}

impl Default for UnitOptions {
    fn default() -> Self {
        UnitOptions {
            exec: PathBuf::from("/usr/bin/hardmuted"),
            args: vec!["--backend".into(), "linux".into()],
        }
    }
}

/// Quotes one word for an `ExecStart=` line (systemd's C-style quoting; `%` and `$` are
/// specifiers and variables there, so they are doubled).
fn exec_word(word: &str) -> String {
    let mut out = String::from("\"");
    for c in word.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '%' => out.push_str("%%"),
            '$' => out.push_str("$$"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The unit file's text.
pub fn unit_text(opts: &UnitOptions) -> String {
    let mut exec = exec_word(&opts.exec.to_string_lossy());
    for a in &opts.args {
        exec.push(' ');
        exec.push_str(&exec_word(a));
    }
    let mut t = String::new();
    let _ = writeln!(t, "[Unit]");
    let _ = writeln!(
        t,
        "Description=HardMute daemon (the HardMute Microphone and its hard mute)"
    );
    let _ = writeln!(t, "Documentation=man:hardmute(1)");
    // As WirePlumber's own unit: started with PipeWire (BindsTo pulls it in), stopped when it
    // stops, started again when it comes back (WantedBy=pipewire.service below).
    let _ = writeln!(t, "After=pipewire.service wireplumber.service");
    let _ = writeln!(t, "BindsTo=pipewire.service");
    let _ = writeln!(t, "ConditionUser=!root");
    let _ = writeln!(t);
    let _ = writeln!(t, "[Service]");
    let _ = writeln!(
        t,
        "# READY=1 once the HardMute Microphone and the control socket are up."
    );
    let _ = writeln!(t, "Type=notify");
    let _ = writeln!(t, "ExecStart={exec}");
    let _ = writeln!(
        t,
        "# The virtual mic outlives a crash (zeros meanwhile); come back in the persisted state."
    );
    let _ = writeln!(t, "Restart=always");
    let _ = writeln!(t, "RestartSec=1");
    let _ = writeln!(t, "Slice=session.slice");
    let _ = writeln!(
        t,
        "# The hardening PipeWire's and WirePlumber's user units use (all work in a user manager:"
    );
    let _ = writeln!(
        t,
        "# seccomp and personality locks need no privileges once NoNewPrivileges is set)."
    );
    let _ = writeln!(t, "LockPersonality=yes");
    let _ = writeln!(t, "MemoryDenyWriteExecute=yes");
    let _ = writeln!(t, "NoNewPrivileges=yes");
    let _ = writeln!(t, "RestrictNamespaces=yes");
    let _ = writeln!(t, "SystemCallArchitectures=native");
    let _ = writeln!(t, "SystemCallFilter=@system-service");
    let _ = writeln!(
        t,
        "# PipeWire's data thread of the daemon's filter gets realtime priority through RTKit."
    );
    let _ = writeln!(t, "RestrictRealtime=no");
    let _ = writeln!(t);
    let _ = writeln!(t, "[Install]");
    let _ = writeln!(t, "WantedBy=default.target pipewire.service");
    t
}

pub fn unit_dir(home: &Path) -> PathBuf {
    home.join(".config/systemd/user")
}

pub fn unit_path(home: &Path) -> PathBuf {
    unit_dir(home).join(UNIT_NAME)
}

fn wants_link(home: &Path) -> PathBuf {
    unit_dir(home).join("default.target.wants").join(UNIT_NAME)
}

/// Writes and enables the unit in `home`. Returns every path it created (files, the symlink and
/// the folders that did not exist), which is also what `uninstall` will remove.
pub fn install(home: &Path, opts: &UnitOptions) -> io::Result<Vec<PathBuf>> {
    let mut created = Vec::new();
    let unit = unit_path(home);
    let link = wants_link(home);
    let manifest = home.join(MANIFEST);
    for dir in [
        unit_dir(home),
        link.parent().map(Path::to_path_buf).unwrap_or_default(),
        manifest_dir(home),
    ] {
        create_dirs(&dir, home, &mut created)?;
    }
    fs::write(&unit, unit_text(opts))?;
    created.push(unit.clone());
    if fs::symlink_metadata(&link).is_ok() {
        fs::remove_file(&link)?;
    }
    std::os::unix::fs::symlink(&unit, &link)?;
    created.push(link);
    // Merge with an earlier manifest, so a re-install never forgets what the first one made.
    let mut all = read_manifest(home);
    for p in &created {
        if !all.contains(p) {
            all.push(p.clone());
        }
    }
    all.push(manifest.clone());
    all.dedup();
    let text: String = all.iter().map(|p| format!("{}\n", p.display())).collect();
    fs::write(&manifest, text)?;
    if !created.contains(&manifest) {
        created.push(manifest);
    }
    Ok(created)
}

fn manifest_dir(home: &Path) -> PathBuf {
    home.join(MANIFEST)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| home.to_path_buf())
}

/// Creates `dir` and its missing parents below `home`, recording each one it made.
fn create_dirs(dir: &Path, home: &Path, created: &mut Vec<PathBuf>) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut d = dir.to_path_buf();
    while !d.exists() && d.starts_with(home) && d != home {
        missing.push(d.clone());
        if !d.pop() {
            break;
        }
    }
    for m in missing.into_iter().rev() {
        fs::create_dir(&m)?;
        created.push(m);
    }
    Ok(())
}

fn read_manifest(home: &Path) -> Vec<PathBuf> {
    fs::read_to_string(home.join(MANIFEST))
        .map(|t| {
            t.lines()
                .filter(|l| !l.is_empty())
                .map(PathBuf::from)
                .collect()
        })
        .unwrap_or_default()
}

/// Removes everything `install` recorded (files and symlinks first, then the folders it made,
/// deepest first, only when empty). Never touches a path outside `home`. Returns what it removed.
pub fn uninstall(home: &Path) -> io::Result<Vec<PathBuf>> {
    let mut listed = read_manifest(home);
    if listed.is_empty() {
        // No manifest (installed by hand, or an old version): remove only our two paths.
        listed = vec![wants_link(home), unit_path(home)];
    }
    listed.retain(|p| p.starts_with(home) && p != home);
    let mut removed = Vec::new();
    for p in listed
        .iter()
        .filter(|p| fs::symlink_metadata(p).is_ok_and(|m| !m.is_dir()))
    {
        fs::remove_file(p)?;
        removed.push(p.clone());
    }
    let mut dirs: Vec<&PathBuf> = listed.iter().filter(|p| p.is_dir()).collect();
    dirs.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for d in dirs {
        if fs::remove_dir(d).is_ok() {
            removed.push(d.clone());
        }
    }
    Ok(removed)
}

/// Tells the user's systemd (when there is one): reload units and start the daemon now. No
/// reboot or re-login needed.
pub fn activate() -> io::Result<()> {
    systemctl(&["daemon-reload"])?;
    systemctl(&["enable", "--now", UNIT_NAME])
}

/// Stops the daemon before `uninstall` removes its unit; the HardMute Microphone node stays
/// (apps keep reading zeros until they are pointed elsewhere).
pub fn deactivate() -> io::Result<()> {
    let _ = systemctl(&["disable", "--now", UNIT_NAME]);
    systemctl(&["daemon-reload"])
}

fn systemctl(args: &[&str]) -> io::Result<()> {
    let status = Command::new("systemctl")
        .arg("--user")
        .args(args)
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "systemctl --user {} failed: {status}",
            args.join(" ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_words_are_quoted_for_systemd() {
        assert_eq!(
            exec_word("/opt/my app/hardmuted"),
            "\"/opt/my app/hardmuted\""
        );
        assert_eq!(exec_word("50%$x\"\\"), "\"50%%$$x\\\"\\\\\"");
    }

    #[test]
    fn unit_runs_the_linux_backend_and_restarts() {
        let t = unit_text(&UnitOptions::default());
        assert!(
            t.contains("ExecStart=\"/usr/bin/hardmuted\" \"--backend\" \"linux\"\n"),
            "{t}"
        );
        assert!(t.contains("Restart=always"));
        assert!(t.contains("\nWantedBy=default.target pipewire.service\n"));
    }

    #[test]
    fn unit_follows_the_pipewire_user_unit_conventions() {
        let t = unit_text(&UnitOptions::default());
        for line in [
            "Type=notify",
            "BindsTo=pipewire.service",
            "After=pipewire.service wireplumber.service",
            "Slice=session.slice",
            "NoNewPrivileges=yes",
            "SystemCallFilter=@system-service",
            "MemoryDenyWriteExecute=yes",
        ] {
            assert!(t.lines().any(|l| l == line), "{line} missing:\n{t}");
        }
        // Realtime scheduling is what the audio thread needs; never forbid it.
        assert!(!t.contains("RestrictRealtime=yes"));
        assert!(!t.contains("Type=simple"));
    }
}
