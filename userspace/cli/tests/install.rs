//! `hardmute install` / `uninstall` on Linux, in a temporary home: the unit is written and
//! enabled, points at a real hardmuted, and uninstall removes exactly what install wrote.
#![cfg(target_os = "linux")]
use std::path::Path;
use std::process::Command;

fn hardmute(home: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hardmute"))
        .args(args)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .output()
        .unwrap()
}

fn files_below(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        out.push(p.strip_prefix(dir).unwrap().display().to_string());
        if p.is_dir() && !p.is_symlink() {
            out.extend(
                files_below(&p)
                    .into_iter()
                    .map(|f| format!("{}/{f}", e.file_name().to_string_lossy())),
            );
        }
    }
    out.sort();
    out
}

#[test]
fn install_then_uninstall_leaves_the_home_as_it_was() {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".config/keep")).unwrap();
    // Stands in for the gate plugin (install only checks that it exists and names it).
    let plugin = home.path().join("libhardmute_linux_gate.so");
    std::fs::write(&plugin, b"").unwrap();
    let before = files_below(home.path());

    let out = hardmute(
        home.path(),
        &[
            "--json",
            "install",
            "--no-activate",
            "--gate-plugin",
            plugin.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["paths"].as_array().unwrap().len() >= 3, "{v}");
    let unit = home.path().join(".config/systemd/user/hardmuted.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    let exec = text
        .lines()
        .find(|l| l.starts_with("ExecStart="))
        .expect("ExecStart");
    // The unit starts a hardmuted that exists (the one built beside this hardmute).
    let daemon = exec
        .trim_start_matches("ExecStart=")
        .split('"')
        .nth(1)
        .unwrap();
    assert!(Path::new(daemon).is_file(), "{exec}");
    assert!(
        exec.contains("--backend") && exec.contains("linux"),
        "{exec}"
    );
    let wants = home
        .path()
        .join(".config/systemd/user/default.target.wants/hardmuted.service");
    assert_eq!(std::fs::read_link(&wants).unwrap(), unit);
    // The PipeWire drop-in that loads the gate, naming that plugin.
    let dropin = home
        .path()
        .join(".config/pipewire/pipewire.conf.d/50-hardmute.conf");
    let text = std::fs::read_to_string(&dropin).unwrap();
    assert!(
        text.contains(&format!("plugin = \"{}\"", plugin.display())),
        "{text}"
    );
    assert!(text.contains("libpipewire-module-filter-chain") && text.contains("nofail"));
    // A plugin that is not there is refused: the drop-in would leave PipeWire without HardMute.
    let missing = hardmute(
        home.path(),
        &[
            "install",
            "--no-activate",
            "--gate-plugin",
            "/nonexistent/gate.so",
        ],
    );
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/gate.so"));

    let out = hardmute(home.path(), &["uninstall", "--no-activate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("removed"));
    assert_eq!(files_below(home.path()), before);
}

#[test]
fn install_without_home_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_hardmute"))
        .args(["install", "--no-activate"])
        .env_remove("HOME")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HOME is not set"));
}
