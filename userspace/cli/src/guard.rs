//! `hardmute guard on|off` (Linux): the configuration that keeps apps off the physical mic
//! (docs/threat-model.md, "The guard"). The files are the persisted setting: the guard is on
//! while they are in place, from the next PipeWire + WirePlumber start.
//!
//! - the user's `pipewire.conf` (`~/.config/pipewire/`): its module-access entry replaced, so
//!   app clients get no permissions at connect (0.3.x before 0.3.83: `access.force =
//!   restricted`, hardmuted and WirePlumber allowed by argv[0]; later versions take no argv[0]
//!   list: `access.socket` restricts the apps' socket `pipewire-0` and leaves the session
//!   manager's `pipewire-0-manager` unrestricted, which any app of the user can connect to:
//!   docs/threat-model.md). A drop-in
//!   cannot do this: PipeWire 0.3 loads the stock module-access first, and the first instance
//!   decides. Made from the system's file when the user has none (removed again at off); the
//!   user's own file is kept beside it and put back at off.
//! - `wireplumber/scripts/hardmute-guard.lua`: default-deny permissions for every app client
//!   that hide the physical capture nodes, HardMute's gate input, their ports and links.
//! - `wireplumber/main.lua.d/60-hardmute-guard.lua` (WirePlumber 0.4) and
//!   `wireplumber/wireplumber.conf.d/60-hardmute-guard.conf` (0.5) load it; each version reads
//!   only its own.

use std::path::{Path, PathBuf};

pub const SCRIPT: &str = include_str!("guard/hardmute-guard.lua");
pub const WP04: &str = include_str!("guard/wp04-guard.lua");
pub const WP05: &str = include_str!("guard/wp05-guard.conf");

/// Which module-access arguments a PipeWire version takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessMode {
    /// Before 0.3.83: `access.allowed` (argv[0] of the client's process) and `access.force`.
    Legacy,
    /// 0.3.83 and later: the allowed/force options are ignored there; access is set per
    /// socket (`access.socket`): the apps' socket restricted.
    Socket,
}

/// The mode for a `pipewire --version` output ("Linked with libpipewire 0.3.65").
pub fn access_mode(version_output: &str) -> AccessMode {
    let v = version_output
        .lines()
        .find(|l| l.contains("libpipewire"))
        .and_then(|l| l.split_whitespace().last())
        .unwrap_or("");
    let n: Vec<u32> = v.split('.').map_while(|x| x.parse().ok()).collect();
    match n.as_slice() {
        [0, 3, p, ..] if *p < 83 => AccessMode::Legacy,
        [0, m, ..] if *m < 3 => AccessMode::Legacy,
        _ => AccessMode::Socket,
    }
}

/// The module-access entry the guard puts in the user's pipewire.conf; `daemon` is hardmuted's
/// path (legacy mode compares argv[0]).
pub fn access_entry(mode: AccessMode, daemon: &Path) -> String {
    let daemon = daemon.to_string_lossy().replace(['"', '\\'], "");
    let args = match mode {
        AccessMode::Legacy => format!(
            "access.allowed = [ \"{daemon}\" hardmuted /usr/bin/wireplumber wireplumber ]\n            \
             access.force = restricted"
        ),
        // 0.3.83 and later: the apps' socket restricted, the session manager's unrestricted
        // (its clients get everything at connect). The server's connection to itself, through
        // which filter-chain makes the gate's nodes, comes in on `pipewire-0` as well and
        // waits like an app until the guard script trusts it (`core.daemon`).
        AccessMode::Socket => {
            "access.socket = { pipewire-0 = \"restricted\" pipewire-0-manager = \"unrestricted\" }"
                .to_owned()
        }
    };
    format!(
        "{{ name = libpipewire-module-access  # {MARK}\n        \
           args = {{\n            {args}\n        }}\n    }}"
    )
}

/// Marks the entry the guard wrote.
pub const MARK: &str = "hardmute guard: apps get no permissions until WirePlumber grants them";

/// `conf` with its module-access entry replaced by `entry` (the whole `{ ... }` object that
/// names libpipewire-module-access, comments and strings skipped). None when there is none.
pub fn replace_access_entry(conf: &str, entry: &str) -> Option<String> {
    let b = conf.as_bytes();
    let needle = b"libpipewire-module-access";
    let mut stack: Vec<usize> = Vec::new();
    let (mut i, mut in_str, mut found) = (0, false, None::<usize>);
    while i < b.len() {
        let c = b[i];
        if in_str {
            if c == b'\\' {
                i += 1;
            } else if c == b'"' {
                in_str = false;
            }
        } else if c == b'#' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'"' {
            in_str = true;
        } else if c == b'{' {
            stack.push(i);
        } else if c == b'}' {
            let open = stack.pop()?;
            if found == Some(open) {
                let mut out = String::with_capacity(conf.len() + entry.len());
                out.push_str(&conf[..open]);
                out.push_str(entry);
                out.push_str(&conf[i + 1..]);
                return Some(out);
            }
        } else if found.is_none() && b[i..].starts_with(needle) {
            found = Some(*stack.last()?);
            i += needle.len();
            continue;
        }
        i += 1;
    }
    None
}

/// The WirePlumber files of the guard with their text, under the user's config folder (and the
/// data folder beside it, `~/.local/share`, where WirePlumber 0.5 looks for scripts).
pub fn wireplumber_files(config: &Path) -> Vec<(PathBuf, &'static str)> {
    let wp = config.join("wireplumber");
    let data = data_dir(config).join("wireplumber");
    vec![
        (wp.join("scripts/hardmute-guard.lua"), SCRIPT),
        (data.join("scripts/hardmute-guard.lua"), SCRIPT),
        (wp.join("main.lua.d/60-hardmute-guard.lua"), WP04),
        (wp.join("wireplumber.conf.d/60-hardmute-guard.conf"), WP05),
    ]
}

/// The user's pipewire.conf, the copy of the user's own one the guard keeps, and the marker
/// that says the guard made the file from the system's.
fn pipewire_paths(config: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let dir = config.join("pipewire");
    (
        dir.join("pipewire.conf"),
        dir.join("pipewire.conf.hardmute-orig"),
        dir.join("pipewire.conf.hardmute-made"),
    )
}

/// The system's pipewire.conf (what PipeWire reads when the user has none).
pub fn system_conf() -> Option<PathBuf> {
    [
        "/etc/pipewire/pipewire.conf",
        "/usr/share/pipewire/pipewire.conf",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("hardmute-tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// Turns the guard on: the WirePlumber files, and the user's pipewire.conf with the guard's
/// module-access entry (made from the system's when the user has none; the user's own is kept
/// beside it and put back by [`remove`]). Returns the paths written.
pub fn write(
    config: &Path,
    daemon: &Path,
    mode: AccessMode,
    system: Option<&Path>,
) -> std::io::Result<Vec<PathBuf>> {
    let (conf, orig, made) = pipewire_paths(config);
    let source = if orig.is_file() {
        std::fs::read_to_string(&orig)?
    } else if conf.is_file() && !std::fs::read_to_string(&conf)?.contains(MARK) {
        let text = std::fs::read_to_string(&conf)?;
        write_atomic(&orig, &text)?;
        text
    } else {
        let system = system.ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no pipewire.conf found (neither the user's nor /usr/share/pipewire's)",
            )
        })?;
        write_atomic(
            &made,
            "made by `hardmute guard on` from the system's pipewire.conf\n",
        )?;
        std::fs::read_to_string(system)?
    };
    let edited = replace_access_entry(&source, &access_entry(mode, daemon)).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "pipewire.conf loads no libpipewire-module-access: the guard needs it",
        )
    })?;
    let mut written = Vec::new();
    for (path, text) in wireplumber_files(config) {
        write_atomic(&path, text)?;
        written.push(path);
    }
    write_atomic(&conf, &edited)?;
    written.push(conf);
    Ok(written)
}

/// Turns the guard off: removes the WirePlumber files and puts the user's pipewire.conf back
/// as it was (removed if the guard made it). Returns the paths removed or restored.
pub fn remove(config: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for (path, _) in wireplumber_files(config) {
        match std::fs::remove_file(&path) {
            Ok(()) => removed.push(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    let (conf, orig, made) = pipewire_paths(config);
    if orig.is_file() {
        std::fs::rename(&orig, &conf)?;
        removed.push(conf);
    } else if made.is_file() {
        match std::fs::remove_file(&conf) {
            Ok(()) => removed.push(conf),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        std::fs::remove_file(&made)?;
    }
    Ok(removed)
}

/// Whether the guard's configuration is installed (the setting is on).
pub fn is_on(config: &Path) -> bool {
    let (conf, _, _) = pipewire_paths(config);
    wireplumber_files(config).iter().all(|(p, _)| p.is_file())
        && std::fs::read_to_string(conf).is_ok_and(|t| t.contains(MARK))
}

/// The user's data folder: `$XDG_DATA_HOME` if absolute, else `.local/share` beside the config
/// folder's parent (`$HOME`).
pub fn data_dir(config: &Path) -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| {
            config
                .parent()
                .unwrap_or(Path::new("/"))
                .join(".local/share")
        })
}

/// The user's config folder: `$XDG_CONFIG_HOME` if absolute, else `$HOME/.config`.
pub fn config_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STOCK: &str = "context.modules = [\n    { name = libpipewire-module-rt args = { nice.level = -11 } }\n    # { name = libpipewire-module-access } (a comment)\n    { name = libpipewire-module-access\n        args = {\n            # access.force = \"x}\"\n            #access.allowed = [ ]\n        }\n        condition = [ { module.access = !false } ]\n    }\n    { name = libpipewire-module-adapter }\n]\n";

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hm-guard-{name}.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn versions_pick_the_access_mode() {
        let out = |v: &str| {
            format!("pipewire\nCompiled with libpipewire {v}\nLinked with libpipewire {v}\n")
        };
        assert_eq!(access_mode(&out("0.3.65")), AccessMode::Legacy);
        assert_eq!(access_mode(&out("0.3.82")), AccessMode::Legacy);
        assert_eq!(access_mode(&out("0.3.83")), AccessMode::Socket);
        assert_eq!(access_mode(&out("1.4.2")), AccessMode::Socket);
        assert_eq!(access_mode("garbage"), AccessMode::Socket);
    }

    #[test]
    fn only_the_access_entry_is_replaced() {
        let e = access_entry(AccessMode::Legacy, Path::new("/opt/hm/hardmuted"));
        let out = replace_access_entry(STOCK, &e).unwrap();
        assert!(out.contains("access.force = restricted"));
        assert!(out.contains("\"/opt/hm/hardmuted\" hardmuted"));
        assert!(!out.contains("condition"), "the whole entry goes: {out}");
        assert!(out.contains("module-rt args = { nice.level = -11 } }"));
        assert!(out.contains("{ name = libpipewire-module-adapter }"));
        assert!(out.contains("# { name = libpipewire-module-access } (a comment)"));
        assert_eq!(out.matches(MARK).count(), 1);
        let s = access_entry(AccessMode::Socket, Path::new("/x"));
        assert!(s.contains("pipewire-0 = \"restricted\""));
        assert!(s.contains("pipewire-0-manager = \"unrestricted\""));
        assert!(
            !s.contains("access.legacy"),
            "legacy mode refuses access.socket"
        );
        assert!(
            !s.contains("access.force"),
            "ignored (and refused with access.socket) on 0.3.83+"
        );
        // The rig's one-line form; and no entry at all.
        let one = "context.modules = [ { name = libpipewire-module-access } { name = x } ]";
        assert!(replace_access_entry(one, &s)
            .unwrap()
            .ends_with("{ name = x } ]"));
        assert!(replace_access_entry("context.modules = [ ]", &s).is_none());
        assert!(replace_access_entry("{ name = libpipewire-module-access", &s).is_none());
        let d = access_entry(AccessMode::Legacy, Path::new("/x\"y\\z/hardmuted"));
        assert!(
            d.contains("\"/xyz/hardmuted\""),
            "quotes cannot break the file"
        );
    }

    #[test]
    fn on_and_off_keep_the_users_own_pipewire_conf() {
        let top = tmp("own");
        let dir = top.join("cfg");
        let conf = dir.join("pipewire/pipewire.conf");
        write_atomic(&conf, STOCK).unwrap();
        assert!(!is_on(&dir));
        let written = write(&dir, Path::new("/hm/hardmuted"), AccessMode::Socket, None).unwrap();
        assert_eq!(written.len(), 5);
        assert!(is_on(&dir));
        assert!(std::fs::read_to_string(&conf)
            .unwrap()
            .contains("access.socket"));
        // On twice: still made from the user's original, not from the edited file.
        write(&dir, Path::new("/hm/hardmuted"), AccessMode::Legacy, None).unwrap();
        let text = std::fs::read_to_string(&conf).unwrap();
        assert!(text.contains("access.force") && !text.contains("access.socket"));
        // One file missing: not on.
        std::fs::remove_file(dir.join("wireplumber/scripts/hardmute-guard.lua")).unwrap();
        assert!(!is_on(&dir));
        assert_eq!(remove(&dir).unwrap().len(), 4);
        assert_eq!(
            std::fs::read_to_string(&conf).unwrap(),
            STOCK,
            "the user's file is back"
        );
        assert!(remove(&dir).unwrap().is_empty());
        assert_eq!(std::fs::read_to_string(&conf).unwrap(), STOCK);
        let _ = std::fs::remove_dir_all(&top);
    }

    #[test]
    fn without_a_user_conf_the_system_one_is_copied_and_removed_at_off() {
        let dir = tmp("sys");
        let system = dir.join("system.conf");
        write_atomic(&system, STOCK).unwrap();
        let cfg = dir.join("cfg");
        assert!(write(&cfg, Path::new("/h"), AccessMode::Legacy, None).is_err());
        write(&cfg, Path::new("/h"), AccessMode::Legacy, Some(&system)).unwrap();
        assert!(is_on(&cfg));
        remove(&cfg).unwrap();
        assert!(!cfg.join("pipewire/pipewire.conf").exists());
        assert!(!is_on(&cfg));
        // A file without module-access is refused, nothing written.
        write_atomic(&system, "context.modules = [ ]").unwrap();
        assert!(write(&cfg, Path::new("/h"), AccessMode::Legacy, Some(&system)).is_err());
        assert!(!cfg.join("wireplumber/scripts/hardmute-guard.lua").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_script_hides_sources_but_not_hardmute_mic() {
        assert!(SCRIPT.contains("local APP_NODE = \"hardmute_mic\""));
        assert!(SCRIPT.contains("local GATE_INPUT = \"hardmute_capture\""));
        assert!(SCRIPT.contains("client:update_permissions { [id] = p }"));
        assert!(WP04.contains("default_access.enabled = false"));
        assert!(WP05.contains("script.client.access-default = disabled"));
    }
}
