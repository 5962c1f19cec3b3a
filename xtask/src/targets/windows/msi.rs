//! Stage `windows-msi`: the user-space MSI (`installer/windows/wix/main.wxs`) built on Linux
//! with Debian's `wixl` (package `wixl`, msitools) from the msvc programs the `windows` stage
//! links, then read back with `msiinfo`/`msiextract` and asserted on, table by table.
//!
//! The shipped MSI is built by cargo-wix (WiX 3) on the Windows runner from the same source.
//! wixl lacks two things WiX 3 does from the source, so the rig adds them after wixl, and the
//! assertions below hold the result to what WiX 3 produces:
//! - the `Environment` element (the CLI's PATH entry): imported from
//!   `installer/windows/wix/environment.idt` with `msibuild -i`;
//! - `Shortcut/@Show` (the autostart shortcuts start minimized): set with an SQL `UPDATE` of the
//!   Startup folder's shortcuts (the Start-menu entry opens the panel normally).
//!
//! (`Package/@Platform`, also ignored, comes from wixl's `-a x64`.)
//!
//! Any other attribute wixl drops (it warns "has no property named ...") fails the row, so the
//! source cannot silently say more than the checked MSI holds.
//!
//! Two rows: the MSI as the rig can build it (daemon + CLI), and the `Panel` variant with
//! `hardmute-panel.exe` when one was built, else with a stand-in copy of `hardmute.exe` (the
//! panel is not cross-built: Slint costs ~17 min cold), which checks the variant's tables, not
//! the panel.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};

use super::user::{build_and_check, build_target_dir, workspace_claims};
use super::MSVC;
use crate::report::Report;
use crate::toolchain::{cache_root, repo_root, run, Toolchain};

pub const WXS: &str = "installer/windows/wix/main.wxs";
pub const ENVIRONMENT_IDT: &str = "installer/windows/wix/environment.idt";
/// Never change it: Windows Installer finds the installed version to replace by this code.
pub const UPGRADE_CODE: &str = "{4683AA3E-E0F2-4DD6-AAEF-998E6275702D}";
pub const PRODUCT_NAME: &str = "HardMute";
/// Attributes wixl ignores that the MSI still gets (class, property): `Show` is put back
/// after wixl (`ShowCmd`), `Platform` comes from wixl's `-a x64` (the summary check asserts it).
const WIXL_IGNORED: &[(&str, &str)] =
    &[("WixlWixShortcut", "Show"), ("WixlWixPackage", "Platform")];
/// `SW_SHOWMINNOACTIVE`: what WiX 3 writes for `Show="minimized"`.
const SHOW_MINIMIZED: &str = "7";
/// msidbComponentAttributes64bit | msidbComponentAttributesRegistryKeyPath.
const COMPONENT_64BIT: u32 = 256;
const COMPONENT_REGISTRY_KEYPATH: u32 = 4;
/// Registry root 1 = HKEY_CURRENT_USER (-1 = per-user/per-machine by ALLUSERS, 2 = HKLM).
const HKCU: &str = "1";
/// Summary information word count bit: no elevation prompt (a per-user package).
const SOURCE_NO_ELEVATION: u32 = 8;

const DAEMON: &str = "hardmuted.exe";
const CLI: &str = "hardmute.exe";
const PANEL: &str = "hardmute-panel.exe";

/// What one MSI must hold.
#[derive(Debug, Clone)]
pub struct Expect {
    pub version: String,
    /// File name and size of every program it installs.
    pub files: Vec<(String, u64)>,
    pub panel: bool,
}

pub fn run_rows(toolchain: &Toolchain, report: &mut Report) {
    report.step_noted("windows-msi", "x86_64 (wixl) daemon + CLI", || {
        build_variant(toolchain, false).map(Some)
    });
    report.step_noted("windows-msi", "x86_64 (wixl) Panel variant", || {
        build_variant(toolchain, true).map(Some)
    });
}

fn verify_tools() -> Result<()> {
    for tool in ["wixl", "msibuild", "msiinfo", "msiextract"] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).exists()))
            .unwrap_or(false)
            || Path::new("/usr/bin").join(tool).exists();
        ensure!(
            found,
            "{tool} is missing: install wixl and msitools (`cargo xtask cross-check deps`)"
        );
    }
    Ok(())
}

/// The programs the MSI ships, linked for msvc by the `windows` stage's build (warm: a relink).
fn programs(toolchain: &Toolchain) -> Result<PathBuf> {
    let claims = workspace_claims(toolchain)?;
    let target_dir = build_target_dir(MSVC);
    build_and_check(toolchain, &repo_root(), &target_dir, MSVC, &claims)?;
    Ok(target_dir.join(MSVC).join("debug"))
}

fn build_variant(toolchain: &Toolchain, panel: bool) -> Result<String> {
    verify_tools()?;
    let bin_dir = programs(toolchain)?;
    let version = env!("CARGO_PKG_VERSION").to_owned();
    let work = cache_root()
        .join("windows-msi")
        .join(if panel { "panel" } else { "base" });
    let _ = fs::remove_dir_all(&work);
    let stage = work.join("bin");
    fs::create_dir_all(&stage)?;
    let mut files = Vec::new();
    let mut note_panel = "";
    for name in [DAEMON, CLI] {
        fs::copy(bin_dir.join(name), stage.join(name))
            .with_context(|| format!("{}: build it with the windows stage", name))?;
    }
    if panel {
        let built = bin_dir.join(PANEL);
        if built.exists() {
            fs::copy(&built, stage.join(PANEL))?;
            note_panel = ", panel built";
        } else {
            fs::copy(bin_dir.join(CLI), stage.join(PANEL))?;
            note_panel = ", panel = stand-in (not cross-built)";
        }
    }
    for name in [DAEMON, CLI, PANEL] {
        if let Ok(meta) = fs::metadata(stage.join(name)) {
            files.push((name.to_owned(), meta.len()));
        }
    }
    let msi = work.join(format!("hardmute-{version}-x86_64.msi"));
    let mut wixl = Command::new("wixl");
    wixl.current_dir(&work)
        .args(["-a", "x64", "-D", "Wixl=1"])
        .arg("-D")
        .arg(format!("Version={version}"))
        .args(["-D", "CargoTargetBinDir=bin"]);
    if panel {
        wixl.args(["-D", "Panel=1"]);
    }
    wixl.arg("-o").arg(&msi).arg(repo_root().join(WXS));
    eprintln!("+ {}", crate::toolchain::describe(&wixl));
    let out = wixl.output().context("running wixl")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprint!("{stderr}");
    ensure!(out.status.success(), "wixl failed ({})", out.status);
    check_wixl_warnings(&stderr)?;
    run(Command::new("msibuild")
        .arg(&msi)
        .arg("-i")
        .arg(repo_root().join(ENVIRONMENT_IDT)))?;
    run(Command::new("msibuild").arg(&msi).arg("-q").arg(format!(
        "UPDATE `Shortcut` SET `ShowCmd` = {SHOW_MINIMIZED} WHERE `Directory_` = 'StartupFolder'"
    )))?;

    let tables = read_tables(&msi)?;
    let expect = Expect {
        version: version.clone(),
        files: files.clone(),
        panel,
    };
    let problems = check_tables(&tables, &expect);
    if !problems.is_empty() {
        bail!("{}:\n  {}", msi.display(), problems.join("\n  "));
    }
    check_summary(&command_text(
        Command::new("msiinfo").arg("suminfo").arg(&msi),
    )?)?;
    // The cabinet holds exactly the staged programs, byte for byte.
    let extracted = work.join("extracted");
    run(Command::new("msiextract")
        .arg("-C")
        .arg(&extracted)
        .arg(&msi))?;
    let install_dir = extracted.join("Programs").join(PRODUCT_NAME);
    for (name, _) in &files {
        let got = fs::read(install_dir.join(name))
            .with_context(|| format!("{name} not extracted into Programs/HardMute"))?;
        ensure!(
            got == fs::read(stage.join(name))?,
            "{name} in the MSI differs from the staged program"
        );
    }
    let extracted_count = fs::read_dir(&install_dir)?.count();
    ensure!(
        extracted_count == files.len(),
        "the MSI holds {extracted_count} files, expected {}",
        files.len()
    );
    Ok(format!(
        "{} ({} files{note_panel}, {} KiB)",
        msi.file_name().unwrap_or_default().to_string_lossy(),
        files.len(),
        fs::metadata(&msi)?.len() / 1024
    ))
}

fn command_text(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| crate::toolchain::describe(cmd))?;
    ensure!(
        out.status.success(),
        "{} failed: {}",
        crate::toolchain::describe(cmd),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Fails on any attribute wixl ignored other than [`WIXL_IGNORED`].
pub fn check_wixl_warnings(stderr: &str) -> Result<()> {
    let mut dropped = Vec::new();
    for line in stderr.lines() {
        let Some(rest) = line.split("object class '").nth(1) else {
            continue;
        };
        let class = rest.split('\'').next().unwrap_or_default();
        let property = line
            .split("has no property named '")
            .nth(1)
            .and_then(|p| p.split('\'').next())
            .unwrap_or_default();
        if !WIXL_IGNORED.contains(&(class, property)) {
            dropped.push(format!("{class}.{property}"));
        }
    }
    ensure!(
        dropped.is_empty(),
        "wixl ignored attributes the rig does not put back: {}",
        dropped.join(", ")
    );
    Ok(())
}

/// One MSI table as `msiinfo export` prints it (IDT: names, types, key line, rows).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn parse_idt(text: &str) -> Result<Self> {
        let mut lines = text.lines().map(|l| l.trim_end_matches('\r'));
        let columns: Vec<String> = lines
            .next()
            .context("empty IDT")?
            .split('\t')
            .map(str::to_owned)
            .collect();
        lines.next().context("IDT without column types")?;
        lines.next().context("IDT without its table line")?;
        let rows = lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                let mut row: Vec<String> = l.split('\t').map(str::to_owned).collect();
                row.resize(columns.len(), String::new());
                row
            })
            .collect();
        Ok(Table { columns, rows })
    }

    /// Rows as column-name -> value maps.
    pub fn records(&self) -> Vec<BTreeMap<&str, &str>> {
        self.rows
            .iter()
            .map(|row| {
                self.columns
                    .iter()
                    .map(String::as_str)
                    .zip(row.iter().map(String::as_str))
                    .collect()
            })
            .collect()
    }
}

pub type Tables = BTreeMap<String, Table>;

/// The tables [`check_tables`] reads.
pub const TABLES: &[&str] = &[
    "Property",
    "Directory",
    "Component",
    "FeatureComponents",
    "File",
    "Registry",
    "Shortcut",
    "Environment",
    "RemoveFile",
    "Upgrade",
    "LaunchCondition",
    "InstallExecuteSequence",
];

fn read_tables(msi: &Path) -> Result<Tables> {
    let present = command_text(Command::new("msiinfo").arg("tables").arg(msi))?;
    let mut tables = Tables::new();
    for name in TABLES {
        if !present.lines().any(|l| l.trim() == *name) {
            continue; // a missing table is reported by check_tables
        }
        let text = command_text(Command::new("msiinfo").arg("export").arg(msi).arg(name))?;
        tables.insert((*name).to_owned(), Table::parse_idt(&text)?);
    }
    Ok(tables)
}

/// Every rule the MSI breaks (empty = all hold).
pub fn check_tables(tables: &Tables, expect: &Expect) -> Vec<String> {
    let mut problems = Vec::new();
    let empty = Table::default();
    let table = |name: &str| tables.get(name).unwrap_or(&empty).records();
    let mut fail = |problem: String| problems.push(problem);

    // Product metadata.
    let property: BTreeMap<&str, &str> = table("Property")
        .iter()
        .map(|r| (r["Property"], r["Value"]))
        .collect();
    for (key, want) in [
        ("ProductName", PRODUCT_NAME),
        ("ProductVersion", expect.version.as_str()),
        ("UpgradeCode", UPGRADE_CODE),
    ] {
        if property.get(key) != Some(&want) {
            fail(format!(
                "Property {key} = {:?}, expected {want:?}",
                property.get(key)
            ));
        }
    }
    if property.get("Manufacturer").is_none_or(|m| m.is_empty()) {
        fail("no Manufacturer".into());
    }
    if !property.get("ProductCode").is_some_and(|c| is_guid(c)) {
        fail("ProductCode is not a GUID".into());
    }
    if let Some(all) = property.get("ALLUSERS") {
        fail(format!(
            "ALLUSERS = {all}: the package must install per user"
        ));
    }

    // Where things go: %LOCALAPPDATA%\Programs\HardMute.
    let dirs: BTreeMap<&str, (&str, &str)> = table("Directory")
        .iter()
        .map(|r| (r["Directory"], (r["Directory_Parent"], r["DefaultDir"])))
        .collect();
    let mut chain = Vec::new();
    let mut at = "INSTALLDIR";
    while let Some((parent, name)) = dirs.get(at) {
        chain.push(*name);
        if chain.len() > 8 || parent.is_empty() {
            break;
        }
        at = parent;
        if at == "LocalAppDataFolder" {
            chain.push("LocalAppDataFolder");
            break;
        }
    }
    if chain != [PRODUCT_NAME, "Programs", "LocalAppDataFolder"] {
        fail(format!(
            "INSTALLDIR is not LocalAppDataFolder\\Programs\\HardMute: {chain:?}"
        ));
    }

    // Components: 64-bit, key path an HKCU value of their own, all in the one feature.
    let registry = table("Registry");
    let features = table("FeatureComponents");
    let components = table("Component");
    let component_dir: BTreeMap<&str, &str> = components
        .iter()
        .map(|c| (c["Component"], c["Directory_"]))
        .collect();
    let mut want_components = vec!["UserPrograms", "Daemon", "Cli", "DaemonAutostart"];
    if expect.panel {
        want_components.extend(["Panel", "PanelAutostart", "PanelStartMenu"]);
    }
    let mut got: Vec<&str> = component_dir.keys().copied().collect();
    got.sort_unstable();
    want_components.sort_unstable();
    if got != want_components {
        fail(format!("components {got:?}, expected {want_components:?}"));
    }
    for c in &components {
        let name = c["Component"];
        let attributes: u32 = c["Attributes"].parse().unwrap_or(0);
        if attributes & COMPONENT_64BIT == 0 {
            fail(format!("component {name} is not 64-bit"));
        }
        if attributes & COMPONENT_REGISTRY_KEYPATH == 0 {
            fail(format!(
                "component {name}'s key path is not a registry value"
            ));
        }
        let key = registry.iter().find(|r| r["Registry"] == c["KeyPath"]);
        match key {
            Some(r) if r["Root"] == HKCU && r["Component_"] == name => {}
            _ => fail(format!(
                "component {name}: key path {:?} is not one of its own HKCU values",
                c["KeyPath"]
            )),
        }
        if !features
            .iter()
            .any(|f| f["Component_"] == name && f["Feature_"] == "Main")
        {
            fail(format!("component {name} is in no feature"));
        }
    }
    for r in &registry {
        if r["Root"] != HKCU {
            fail(format!(
                "registry value {}\\{} is not under HKCU (root {})",
                r["Key"], r["Name"], r["Root"]
            ));
        }
    }

    // Files: exactly the programs, with their sizes, into INSTALLDIR.
    let file_rows = table("File");
    let mut got_files: Vec<(String, u64)> = file_rows
        .iter()
        .map(|f| {
            (
                f["FileName"]
                    .rsplit('|')
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
                f["FileSize"].parse().unwrap_or(0),
            )
        })
        .collect();
    got_files.sort();
    let mut want_files = expect.files.clone();
    want_files.sort();
    if got_files != want_files {
        fail(format!("files {got_files:?}, expected {want_files:?}"));
    }
    for f in &file_rows {
        if component_dir.get(f["Component_"]) != Some(&"INSTALLDIR") {
            fail(format!(
                "{} is not installed into INSTALLDIR",
                f["FileName"]
            ));
        }
    }

    // Autostart at logon: shortcuts in the user's Startup folder, minimized; the panel also
    // in the Start menu (opened normally: ShowCmd empty).
    let shortcuts = table("Shortcut");
    let mut want_shortcuts = vec![("DaemonAtLogon", DAEMON, "", "StartupFolder", SHOW_MINIMIZED)];
    if expect.panel {
        want_shortcuts.push((
            "PanelAtLogon",
            PANEL,
            "--hidden",
            "StartupFolder",
            SHOW_MINIMIZED,
        ));
        want_shortcuts.push(("PanelInStartMenu", PANEL, "", "ProgramMenuFolder", ""));
    }
    if shortcuts.len() != want_shortcuts.len() {
        fail(format!(
            "{} shortcuts, expected {}",
            shortcuts.len(),
            want_shortcuts.len()
        ));
    }
    for (id, exe, args, folder, show) in want_shortcuts {
        match shortcuts.iter().find(|s| s["Shortcut"] == id) {
            None => fail(format!("no shortcut {id}")),
            Some(s) => {
                let target = format!("[INSTALLDIR]{exe}");
                let facts = [
                    ("Directory_", folder),
                    ("Target", target.as_str()),
                    ("Arguments", args),
                    ("ShowCmd", show),
                    ("WkDir", "INSTALLDIR"),
                ];
                for (column, want) in facts {
                    if s[column] != want {
                        fail(format!(
                            "shortcut {id}: {column} = {:?}, expected {want:?}",
                            s[column]
                        ));
                    }
                }
            }
        }
    }

    // The CLI on the user's PATH, appended, removed on uninstall.
    let environment = table("Environment");
    let path_ok = environment.len() == 1
        && environment.iter().all(|e| {
            e["Name"] == "=-PATH" && e["Value"] == "[~];[INSTALLDIR]" && e["Component_"] == "Cli"
        });
    if !path_ok {
        fail(format!(
            "Environment must hold one user PATH entry (=-PATH, [~];[INSTALLDIR], Cli): {:?}",
            tables.get("Environment").map(|t| &t.rows)
        ));
    }

    // Uninstall removes the folders it made (if empty).
    let remove = table("RemoveFile");
    for dir in ["INSTALLDIR", "UserProgramsDir"] {
        if !remove
            .iter()
            .any(|r| r["DirProperty"] == dir && r["FileName"].is_empty() && r["InstallMode"] == "2")
        {
            fail(format!("no RemoveFolder on uninstall for {dir}"));
        }
    }

    // Upgrades: every other version of this UpgradeCode is replaced; a newer one blocks.
    let upgrade = table("Upgrade");
    let replaces = upgrade.iter().any(|u| {
        u["UpgradeCode"] == UPGRADE_CODE
            && u["ActionProperty"] == "WIX_UPGRADE_DETECTED"
            && u["VersionMax"] == expect.version
            && u["Attributes"].parse::<u32>().unwrap_or(2) & 2 == 0
    });
    let detects_newer = upgrade.iter().any(|u| {
        u["UpgradeCode"] == UPGRADE_CODE
            && u["ActionProperty"] == "WIX_DOWNGRADE_DETECTED"
            && u["VersionMin"] == expect.version
    });
    if !replaces || !detects_newer {
        fail(format!(
            "Upgrade table does not replace older / detect newer versions: {upgrade:?}"
        ));
    }
    if !table("LaunchCondition")
        .iter()
        .any(|l| l["Condition"] == "NOT WIX_DOWNGRADE_DETECTED")
    {
        fail("no launch condition refusing a downgrade".into());
    }
    let sequence = table("InstallExecuteSequence");
    for action in [
        "RemoveExistingProducts",
        "InstallFiles",
        "RemoveFiles",
        "WriteRegistryValues",
        "RemoveRegistryValues",
        "CreateShortcuts",
        "RemoveShortcuts",
        "WriteEnvironmentStrings",
        "RemoveEnvironmentStrings",
    ] {
        if !sequence.iter().any(|s| s["Action"] == action) {
            fail(format!("InstallExecuteSequence lacks {action}"));
        }
    }
    problems
}

/// `msiinfo suminfo`: a 64-bit English package that needs no elevation.
pub fn check_summary(text: &str) -> Result<()> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
            .unwrap_or_default()
    };
    let template = field("Template:");
    ensure!(
        template == "x64;1033",
        "summary Template {template:?}, expected x64;1033"
    );
    let source: u32 = field("Source:")
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .parse()
        .context("summary Source (word count)")?;
    ensure!(
        source & SOURCE_NO_ELEVATION != 0,
        "summary word count {source}: the package asks for elevation"
    );
    Ok(())
}

fn is_guid(text: &str) -> bool {
    let inner = text.strip_prefix('{').and_then(|t| t.strip_suffix('}'));
    inner.is_some_and(|g| {
        g.len() == 36
            && g.char_indices().all(|(i, c)| {
                if [8, 13, 18, 23].contains(&i) {
                    c == '-'
                } else {
                    c.is_ascii_hexdigit()
                }
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idt(columns: &str, rows: &[&str]) -> Table {
        let text = format!("{columns}\ns72\nX\tY\n{}\n", rows.join("\n"));
        Table::parse_idt(&text.replace('|', "\t")).unwrap()
    }

    /// The tables of a correct daemon + CLI MSI (what wixl + the rig's fix-ups produce).
    fn good() -> (Tables, Expect) {
        let mut t = Tables::new();
        let mut put = |name: &str, table: Table| {
            t.insert(name.to_owned(), table);
        };
        put(
            "Property",
            idt(
                "Property|Value",
                &[
                    "ProductName|HardMute",
                    "ProductVersion|0.1.0",
                    "Manufacturer|HardMute project",
                    "UpgradeCode|{4683AA3E-E0F2-4DD6-AAEF-998E6275702D}",
                    "ProductCode|{33E82580-83E7-4B18-8CA2-60BC3DED64BF}",
                ],
            ),
        );
        put(
            "Directory",
            idt(
                "Directory|Directory_Parent|DefaultDir",
                &[
                    "UserProgramsDir|LocalAppDataFolder|Programs",
                    "INSTALLDIR|UserProgramsDir|HardMute",
                    "StartupFolder|TARGETDIR|.",
                    "LocalAppDataFolder|TARGETDIR|.",
                    "TARGETDIR||SourceDir",
                ],
            ),
        );
        put(
            "Component",
            idt(
                "Component|ComponentId|Directory_|Attributes|Condition|KeyPath",
                &[
                    "UserPrograms|{A}|UserProgramsDir|260||r0",
                    "Daemon|{B}|INSTALLDIR|260||r1",
                    "Cli|{C}|INSTALLDIR|260||r2",
                    "DaemonAutostart|{D}|StartupFolder|260||r3",
                ],
            ),
        );
        put(
            "Registry",
            idt(
                "Registry|Root|Key|Name|Value|Component_",
                &[
                    "r0|1|Software\\HardMute\\Installer|ProgramsFolder|#1|UserPrograms",
                    "r1|1|Software\\HardMute\\Installer|Daemon|#1|Daemon",
                    "r2|1|Software\\HardMute\\Installer|Cli|#1|Cli",
                    "r3|1|Software\\HardMute\\Installer|DaemonAutostart|#1|DaemonAutostart",
                ],
            ),
        );
        put(
            "FeatureComponents",
            idt(
                "Feature_|Component_",
                &[
                    "Main|UserPrograms",
                    "Main|Daemon",
                    "Main|Cli",
                    "Main|DaemonAutostart",
                ],
            ),
        );
        put(
            "File",
            idt(
                "File|Component_|FileName|FileSize|Version|Language|Attributes|Sequence",
                &[
                    "hardmuted.exe|Daemon|hardmuted.exe|100|||512|1",
                    "hardmute.exe|Cli|hardmute.exe|50|||512|2",
                ],
            ),
        );
        put("Shortcut", idt(
            "Shortcut|Directory_|Name|Component_|Target|Arguments|Description|Hotkey|Icon_|IconIndex|ShowCmd|WkDir",
            &["DaemonAtLogon|StartupFolder|HardMute daemon|DaemonAutostart|[INSTALLDIR]hardmuted.exe||d||||7|INSTALLDIR"],
        ));
        put(
            "Environment",
            idt(
                "Environment|Name|Value|Component_",
                &["UserPath|=-PATH|[~];[INSTALLDIR]|Cli"],
            ),
        );
        put(
            "RemoveFile",
            idt(
                "FileKey|Component_|FileName|DirProperty|InstallMode",
                &[
                    "a|UserPrograms||UserProgramsDir|2",
                    "b|Daemon||INSTALLDIR|2",
                ],
            ),
        );
        put(
            "Upgrade",
            idt(
                "UpgradeCode|VersionMin|VersionMax|Language|Attributes|Remove|ActionProperty",
                &[
                    "{4683AA3E-E0F2-4DD6-AAEF-998E6275702D}||0.1.0||1||WIX_UPGRADE_DETECTED",
                    "{4683AA3E-E0F2-4DD6-AAEF-998E6275702D}|0.1.0|||2||WIX_DOWNGRADE_DETECTED",
                ],
            ),
        );
        put(
            "LaunchCondition",
            idt(
                "Condition|Description",
                &["NOT WIX_DOWNGRADE_DETECTED|newer"],
            ),
        );
        put(
            "InstallExecuteSequence",
            idt(
                "Action|Condition|Sequence",
                &[
                    "RemoveExistingProducts||1401",
                    "InstallFiles||4000",
                    "RemoveFiles||3500",
                    "WriteRegistryValues||5000",
                    "RemoveRegistryValues||2600",
                    "CreateShortcuts||4500",
                    "RemoveShortcuts||3200",
                    "WriteEnvironmentStrings||5200",
                    "RemoveEnvironmentStrings||3300",
                ],
            ),
        );
        let expect = Expect {
            version: "0.1.0".into(),
            files: vec![("hardmuted.exe".into(), 100), ("hardmute.exe".into(), 50)],
            panel: false,
        };
        (t, expect)
    }

    fn set(t: &mut Tables, table: &str, row: usize, column: &str, value: &str) {
        let tab = t.get_mut(table).unwrap();
        let col = tab.columns.iter().position(|c| c == column).unwrap();
        tab.rows[row][col] = value.to_owned();
    }

    #[test]
    fn a_correct_msi_passes() {
        let (t, e) = good();
        assert_eq!(check_tables(&t, &e), Vec::<String>::new());
    }

    #[test]
    fn each_broken_rule_is_reported() {
        type Break = fn(&mut Tables, &mut Expect);
        let cases: &[(&str, Break)] = &[
            ("UpgradeCode", |t, _| {
                set(
                    t,
                    "Property",
                    3,
                    "Value",
                    "{00000000-0000-0000-0000-000000000000}",
                )
            }),
            ("ProductVersion", |_, e| e.version = "0.2.0".into()),
            ("not under HKCU", |t, _| set(t, "Registry", 1, "Root", "2")),
            ("key path", |t, _| set(t, "Component", 2, "KeyPath", "r1")),
            ("not 64-bit", |t, _| {
                set(t, "Component", 0, "Attributes", "4")
            }),
            ("files", |_, e| e.files[0].1 = 101),
            ("ShowCmd", |t, _| set(t, "Shortcut", 0, "ShowCmd", "")),
            ("Directory_", |t, _| {
                set(t, "Shortcut", 0, "Directory_", "ProgramMenuFolder")
            }),
            ("PATH", |t, _| set(t, "Environment", 0, "Name", "=PATH")),
            ("PATH", |t, _| {
                t.remove("Environment");
            }),
            ("LocalAppDataFolder", |t, _| {
                set(
                    t,
                    "Directory",
                    0,
                    "Directory_Parent",
                    "ProgramFiles64Folder",
                )
            }),
            ("ALLUSERS", |t, _| {
                t.get_mut("Property")
                    .unwrap()
                    .rows
                    .push(vec!["ALLUSERS".into(), "1".into()])
            }),
            ("RemoveFolder", |t, _| {
                set(t, "RemoveFile", 1, "InstallMode", "1")
            }),
            ("Upgrade", |t, _| set(t, "Upgrade", 0, "Attributes", "2")),
            ("WriteEnvironmentStrings", |t, _| {
                set(t, "InstallExecuteSequence", 7, "Action", "X")
            }),
            ("components", |_, e| e.panel = true),
            ("in no feature", |t, _| {
                set(t, "FeatureComponents", 1, "Feature_", "Other")
            }),
        ];
        for (want, break_it) in cases {
            let (mut t, mut e) = good();
            break_it(&mut t, &mut e);
            let problems = check_tables(&t, &e);
            assert!(
                problems.iter().any(|p| p.contains(want)),
                "breaking {want}: {problems:?}"
            );
        }
    }

    #[test]
    fn idt_text_with_crlf_parses() {
        let t = Table::parse_idt("A\tB\r\ns72\tS72\r\nT\tA\r\nx\t\r\ny\tz\r\n").unwrap();
        assert_eq!(t.columns, ["A", "B"]);
        assert_eq!(t.rows, [vec!["x", ""], vec!["y", "z"]]);
        assert_eq!(t.records()[1]["B"], "z");
    }

    #[test]
    fn only_the_known_wixl_omission_is_tolerated() {
        let show = "(wixl:1): GLib-GObject-WARNING **: g_object_set_is_valid_property: object class 'WixlWixShortcut' has no property named 'Show'";
        assert!(check_wixl_warnings(show).is_ok());
        let other = show.replace("'Show'", "'Arguments'");
        let err = check_wixl_warnings(&format!("{show}\n{other}")).unwrap_err();
        assert!(
            err.to_string().contains("WixlWixShortcut.Arguments"),
            "{err}"
        );
    }

    #[test]
    fn summary_needs_x64_and_no_elevation() {
        assert!(check_summary("Template: x64;1033\nSource: 10 (a)\n").is_ok());
        assert!(check_summary("Template: x64;1033\nSource: 2 (2)\n").is_err());
        assert!(check_summary("Template: Intel;1033\nSource: 10 (a)\n").is_err());
    }

    #[test]
    fn the_committed_sources_agree_with_the_rules() {
        let root = repo_root();
        let wxs = fs::read_to_string(root.join(WXS)).unwrap();
        let code = UPGRADE_CODE.trim_matches(['{', '}']);
        assert!(
            wxs.contains(&format!("UpgradeCode=\"{code}\"")),
            "UpgradeCode changed"
        );
        assert!(wxs.contains("<?ifndef var.Wixl?>") && wxs.contains("Name=\"PATH\""));
        assert!(wxs.contains("<?ifdef var.Panel?>"));
        assert!(wxs.contains("Show=\"minimized\""));
        assert!(wxs.contains("Platform=\"x64\""));
        let env =
            Table::parse_idt(&fs::read_to_string(root.join(ENVIRONMENT_IDT)).unwrap()).unwrap();
        assert_eq!(
            env.rows,
            [vec!["UserPath", "=-PATH", "[~];[INSTALLDIR]", "Cli"]]
        );
        assert!(wxs.contains("<Component Id=\"Cli\""));
        // XML forbids "--" inside comments (both toolsets refuse the file).
        for comment in wxs.split("<!--").skip(1) {
            let body = comment.split("-->").next().unwrap();
            assert!(!body.contains("--"), "`--` in a comment: {body}");
        }
    }
}
