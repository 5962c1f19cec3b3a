//! The installer's property lists parse (python3's plistlib, the same parser family as Apple's
//! CFPropertyList for XML plists) and say what the plug-in needs: the factory UUID maps to the
//! function this crate exports, and that factory is registered for kAudioServerPlugInTypeUUID.
//! Needs `python3` on PATH (the test fails, never skips, without it).

use std::path::PathBuf;
use std::process::Command;

fn installer_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../installer/macos")
}

/// Parses `file` with plistlib after substituting @VERSION@, runs `checks` (Python, with the dict
/// bound to `p`), and returns what the script printed.
fn plist_check(file: &str, checks: &str) -> String {
    let path = installer_dir().join(file);
    assert!(path.exists(), "{} missing", path.display());
    let script = format!(
        "import plistlib,sys\n\
         raw=open(sys.argv[1],'rb').read().replace(b'@VERSION@', b'1.2.3')\n\
         p=plistlib.loads(raw)\n\
         assert isinstance(p, dict), type(p)\n\
         {checks}\n\
         print('ok')\n"
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&path)
        .output()
        .expect("python3 is required for the installer plist checks");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{file}: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn driver_info_plist_registers_the_exported_factory_for_the_plugin_type() {
    // The function named in the plist is the one this crate exports (compile-time reference).
    let _exported: unsafe extern "C" fn(_, _) -> _ =
        hardmute_macos_plugin::AudioServerPlugIn_Factory;
    let type_uuid = "443ABAB8-E7B3-491A-B985-BEB9187030DB";
    let out = plist_check(
        "Info.plist.in",
        &format!(
            "f=p['CFPlugInFactories']\n\
             assert len(f)==1, f\n\
             (uuid, fn), = f.items()\n\
             assert fn=='AudioServerPlugIn_Factory', fn\n\
             import uuid as U; U.UUID(uuid)\n\
             assert p['CFPlugInTypes']=={{'{type_uuid}':[uuid]}}, p['CFPlugInTypes']\n\
             assert p['CFBundlePackageType']=='BNDL'\n\
             assert p['CFBundleExecutable']=='HardMute'\n\
             assert p['CFBundleVersion']=='1.2.3'\n\
             assert p['CFBundleIdentifier']=='{driver_id}', p['CFBundleIdentifier']\n\
             print(uuid)",
            driver_id = hardmute_macos_plugin::oslog::SUBSYSTEM
        ),
    );
    assert!(out.ends_with("ok\n"));
}

#[test]
fn launch_agent_and_daemon_identity_plists_are_consistent() {
    plist_check(
        "org.hardmute.daemon.plist",
        "assert p['Label']=='org.hardmute.daemon'\n\
         a=p['ProgramArguments']\n\
         assert a[:2]==['/bin/sh','-c'] and len(a)==3, a\n\
         assert 'exec \"/Library/Application Support/HardMute/hardmuted\" >>\"$HOME/Library/Logs/HardMute/hardmuted.log\" 2>&1' in a[2], a\n\
         assert a[2].startswith('mkdir -p \"$HOME/Library/Logs/HardMute\" && '), a\n\
         assert p['RunAtLoad'] is True and p['KeepAlive'] is True\n\
         assert p['LimitLoadToSessionType']=='Aqua'",
    );
    // The plug-in's owner check compares AddDeviceClient's bundle id with this identifier.
    let check = format!(
        "assert p['CFBundleIdentifier']=='{}', p['CFBundleIdentifier']",
        hardmute_macos_plugin::model::DAEMON_BUNDLE_ID
    );
    plist_check("daemon-Info.plist", &check);
}

#[test]
fn panel_launch_agent_starts_the_hidden_panel_and_the_scripts_manage_it() {
    plist_check(
        "org.hardmute.panel.plist",
        "assert p['Label']=='org.hardmute.panel'\n\
         a=p['ProgramArguments']\n\
         assert a[:2]==['/bin/sh','-c'] and len(a)==3, a\n\
         assert 'exec \"/Applications/HardMute.app/Contents/MacOS/hardmute-panel\" \"--hidden\" >>\"$HOME/Library/Logs/HardMute/panel.log\" 2>&1' in a[2], a\n\
         assert p['RunAtLoad'] is True\n\
         assert p['KeepAlive']=={'SuccessfulExit': False}, p['KeepAlive']\n\
         assert p['LimitLoadToSessionType']=='Aqua'",
    );
    // Installed by build-pkg.sh, bootstrapped by postinstall, stopped by preinstall, removed by
    // uninstall.sh: a label or path missing from one of them would leave a stale login item.
    let read = |f: &str| std::fs::read_to_string(installer_dir().join(f)).unwrap();
    let pkg = read("build-pkg.sh");
    assert!(pkg.contains("org.hardmute.panel.plist") && pkg.contains("build-app.sh"));
    for script in ["scripts/postinstall", "scripts/preinstall", "uninstall.sh"] {
        let text = read(script);
        for label in ["org.hardmute.daemon", "org.hardmute.panel"] {
            assert!(text.contains(label), "{script} does not handle {label}");
        }
    }
    assert!(read("scripts/postinstall").contains("launchctl bootstrap"));
    // The owner record the plug-in reads (only that uid's daemon may clear hard mute).
    let postinstall = read("scripts/postinstall");
    assert!(
        postinstall.contains(&format!(
            "OWNER_FILE=\"{}\"",
            hardmute_macos_plugin::identity::OWNER_FILE
        )),
        "postinstall does not write the plug-in's owner record"
    );
    assert!(read("uninstall.sh").contains("rm -f \"/Library/LaunchAgents/$label.plist\""));
    assert!(read("uninstall.sh")
        .contains("rm -rf \"/Library/Application Support/HardMute\" /Applications/HardMute.app"));
}

#[test]
fn panel_app_bundle_is_a_menu_bar_app() {
    plist_check(
        "panel-Info.plist.in",
        "assert p['LSUIElement'] is True\n\
         assert p['CFBundlePackageType']=='APPL'\n\
         assert p['CFBundleExecutable']=='hardmute-panel'\n\
         assert p['CFBundleIdentifier']=='org.hardmute.panel'\n\
         assert p['CFBundleIconFile']=='HardMute'\n\
         assert p['CFBundleShortVersionString']=='1.2.3'",
    );
}

#[test]
fn the_package_shows_welcome_licence_and_conclusion_pages() {
    let dir = installer_dir();
    let dist = std::fs::read_to_string(dir.join("distribution.xml")).unwrap();
    for (element, file) in [
        ("welcome", "welcome.html"),
        ("license", "license.txt"),
        ("conclusion", "conclusion.html"),
    ] {
        assert!(
            dist.contains(&format!("<{element} file=\"{file}\"")),
            "distribution.xml has no <{element}>"
        );
    }
    for page in ["welcome.html", "conclusion.html"] {
        assert!(dir.join("resources").join(page).is_file(), "{page} missing");
    }
    let pkg = std::fs::read_to_string(dir.join("build-pkg.sh")).unwrap();
    assert!(pkg.contains("--resources \"$WORK/resources\""));
    assert!(pkg.contains("LICENSE-MIT") && pkg.contains("LICENSE-APACHE"));
}
