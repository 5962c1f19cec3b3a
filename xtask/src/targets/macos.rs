//! Stage `macos`: the real macOS deliverables, linked on Linux with ld64.lld against the stub SDK
//! generated from the workspace's own dependency graph, and asserted on.
//!
//! - `macos-plugin <target>`: `hardmute-macos-plugin` (driver/macos/plugin) linked as an MH_BUNDLE for
//!   each Apple target. Building it compiles the Apple-only constant and struct-size assertions
//!   against objc2-core-audio (`consts.rs`, `abi.rs`), which no Linux build sees. Asserted: the
//!   bundle exports `AudioServerPlugIn_Factory` and nothing else, binds nothing through the flat
//!   namespace, and links only CoreFoundation and libSystem (`-dead_strip_dylibs` drops the
//!   CoreAudio and libiconv load commands nothing binds to).
//! - `macos-bundle universal`: `installer/macos/build-bundle.sh` (the shipping script) assembles
//!   `HardMute.driver` from both slices with llvm-lipo; the universal executable holds exactly
//!   arm64 + x86_64, each slice passes the plug-in rules again, and Info.plist (read with
//!   python3's plistlib) registers a factory UUID for kAudioServerPlugInTypeUUID that maps to a
//!   function the binary exports.
//! - `macos-bridge <target>`: the bridge's `bridge_probe` example (coreaudio-rs, objc2) linked as
//!   an MH_EXECUTE; asserted: no flat-namespace binds, only the frameworks the bridge uses, and
//!   the HAL client API bound two-level to CoreAudio.
//! - `macos-daemon <target>`: `hardmuted` itself (the macOS backend: bridge, hard-mute property,
//!   HAL property listeners) linked as an MH_EXECUTE with `installer/macos/daemon-Info.plist`
//!   embedded as its `__TEXT,__info_plist` section, the way the shipped binary is built; asserted:
//!   the bridge's library rules, the HAL listener API and the AudioUnit API bound two-level to
//!   their frameworks, and the embedded plist (plistlib) names the bundle id
//!   `org.hardmute.daemon` that the plug-in's owner check compares.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;

use crate::inspect::macho::{
    self, Arch, BundleRules, ExecutableRules, FixupFormat, MachOImage, OsVersion,
};
use crate::report::Report;
use crate::targets::crates::BUILD_STD;
use crate::targets::{link, Product, RustcLink};
use crate::toolchain::{cache_root, repo_root, run, Toolchain};

pub const TARGETS: &[&str] = &["aarch64-apple-darwin", "x86_64-apple-darwin"];

const PLUGIN_PACKAGE: &str = "hardmute-macos-plugin";
const PLUGIN_DIR: &str = "driver/macos/plugin";
const BRIDGE_PACKAGE: &str = "hardmute-backend-macos";
const BRIDGE_EXAMPLE: &str = "bridge_probe";
const BRIDGE_DIR: &str = "userspace/backend/macos";
const BUNDLE_SCRIPT: &str = "installer/macos/build-bundle.sh";
const DAEMON_PACKAGE: &str = "hardmuted";
const DAEMON_DIR: &str = "userspace/daemon";
const DAEMON_INFO_PLIST: &str = "installer/macos/daemon-Info.plist";
/// The bundle id the plug-in accepts an unmute from (`driver/macos/plugin`'s owner check).
pub const DAEMON_BUNDLE_ID: &str = "org.hardmute.daemon";
const AUDIO_TOOLBOX: &str =
    "/System/Library/Frameworks/AudioToolbox.framework/Versions/A/AudioToolbox";

/// The one symbol coreaudiod (CFPlugIn) looks up in the plug-in.
pub const FACTORY: &str = "AudioServerPlugIn_Factory";
/// kAudioServerPlugInTypeUUID (AudioServerPlugIn.h).
pub const PLUGIN_TYPE_UUID: &str = "443ABAB8-E7B3-491A-B985-BEB9187030DB";

const LIBSYSTEM: &str = "/usr/lib/libSystem.B.dylib";

/// The plug-in's deployment target, pinned at link time (`-platform_version`, the last one wins in
/// ld64.lld) and asserted on LC_BUILD_VERSION: Info.plist's LSMinimumSystemVersion.
pub const PLUGIN_MIN_MACOS: OsVersion = OsVersion(11, 0, 0);
/// The SDK version written next to it (what rustc passes for the stub SDK).
pub const PLUGIN_SDK: OsVersion = OsVersion(11, 0, 0);
/// The plug-in's link flags beyond rustc's own: a bundle, no unused dylib load commands, classic
/// dyld info (rebase/bind opcodes; what the loader in `tests/macos-loader` reads) rather than the
/// chained fixups ld64.lld would choose from macOS 13 on, and the deployment target.
pub const PLUGIN_LINK_FLAGS: &[&str] = &[
    "-bundle",
    "-dead_strip_dylibs",
    "-no_fixup_chains",
    // Keep `__TEXT,__oslogstring` (the os_log format) its own section, as Apple's ld64 does;
    // ld64.lld otherwise merges every C-string-literal section into `__cstring`.
    "--separate-cstring-literal-sections",
    "-platform_version",
    "macos",
    "11.0",
    "11.0",
];
/// The imports of each slice, one `<symbol> <library>` per line: a new or vanished import fails
/// `macos-plugin` and names it. Regenerate with `HARDMUTE_BLESS_IMPORTS=1`.
pub const IMPORTS_DIR: &str = "driver/macos/plugin/imports";
const CORE_FOUNDATION: &str =
    "/System/Library/Frameworks/CoreFoundation.framework/Versions/A/CoreFoundation";
const CORE_AUDIO: &str = "/System/Library/Frameworks/CoreAudio.framework/Versions/A/CoreAudio";
/// What the bridge may load: CoreAudio (HAL client API), AudioToolbox (AudioUnits), and what
/// coreaudio-rs / objc2 pull in (Foundation, libobjc, libiconv), besides CF and libSystem.
const BRIDGE_LIBRARIES: &[&str] = &[
    LIBSYSTEM,
    CORE_FOUNDATION,
    CORE_AUDIO,
    AUDIO_TOOLBOX,
    "/System/Library/Frameworks/Foundation.framework/Versions/C/Foundation",
    "/usr/lib/libobjc.A.dylib",
    "/usr/lib/libiconv.2.dylib",
];

pub fn run_stage(toolchain: &Toolchain, report: &mut Report) {
    // A bundle from an earlier run must not outlive a failed link: `macos-run` would load it.
    let _ = fs::remove_dir_all(cache_root().join("macos-bundle").join("HardMute.driver"));
    let mut plugins = Vec::new();
    for target in TARGETS {
        report.step("macos-plugin", target, || {
            plugins.push(link_plugin(toolchain, target)?);
            Ok(())
        });
    }
    if plugins.len() == TARGETS.len() {
        report.step("macos-bundle", "universal", || {
            assemble_bundle(toolchain, &plugins)
        });
    } else {
        report.skip(
            "macos-bundle",
            "universal",
            "a plug-in slice failed to link",
        );
    }
    for target in TARGETS {
        report.step("macos-bridge", target, || {
            link_bridge_probe(toolchain, target)
        });
    }
    for target in TARGETS {
        report.step("macos-daemon", target, || link_daemon(toolchain, target));
    }
}

fn plugin_rules(arch: Arch) -> BundleRules<'static> {
    BundleRules {
        arch,
        exports: &[FACTORY],
        allowed_libraries: &[LIBSYSTEM, CORE_FOUNDATION],
    }
}

/// The stub SDK for everything the workspace links on `target` (`cargo metadata` of a member
/// resolves the whole workspace, so one SDK serves the plug-in and the bridge).
fn stub_sdk(toolchain: &Toolchain, target: &str) -> Result<PathBuf> {
    crate::macos_sdk::generate_for(
        toolchain,
        "macos",
        &repo_root().join(PLUGIN_DIR).join("Cargo.toml"),
        target,
    )
}

/// `-Clinker=.../ld64.lld` and the flavour, plus `extra`: passed to the final crate only, so the
/// std build stays shared with every other build of this target.
fn ld64_args(toolchain: &Toolchain, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        format!("-Clinker={}", toolchain.llvm("ld64.lld").display()),
        "-Clinker-flavor=ld64.lld".to_owned(),
    ];
    args.extend(extra.iter().map(|a| format!("-Clink-arg={a}")));
    args
}

fn link_plugin(toolchain: &Toolchain, target: &str) -> Result<PathBuf> {
    toolchain.verify(&["ld64.lld"])?;
    let arch = Arch::of_target(target).context("unknown arch")?;
    let sdk = stub_sdk(toolchain, target)?;
    let root = repo_root();
    // rustc links a cdylib with -dylib; ld64 takes the last of -dylib/-bundle.
    let link_args = ld64_args(toolchain, PLUGIN_LINK_FLAGS);
    let out = link(
        toolchain,
        &RustcLink {
            workspace: &root,
            final_src: &root.join(PLUGIN_DIR).join("src/lib.rs"),
            package: PLUGIN_PACKAGE,
            product: Product::Lib,
            target,
            build_std: BUILD_STD,
            sdkroot: Some(&sdk),
            link_args: &link_args,
            release: false,
        },
    )?;
    let image = MachOImage::parse(&fs::read(&out)?)?;
    eprintln!("{}: {}", out.display(), macho::summary(&image));
    check_plugin(&image, arch)?;
    Ok(out)
}

/// The allowlist file of one slice.
pub fn imports_file(arch: Arch) -> PathBuf {
    let name = match arch {
        Arch::Arm64 => "arm64",
        Arch::X86_64 => "x86_64",
        Arch::Other(_) => "other",
    };
    repo_root().join(IMPORTS_DIR).join(format!("{name}.txt"))
}

/// The slice imports exactly its allowlist (or, with `HARDMUTE_BLESS_IMPORTS=1`, the allowlist
/// is rewritten from the slice).
fn check_plugin_imports(image: &MachOImage) -> Result<()> {
    let path = imports_file(image.arch);
    let shown = format!(
        "{IMPORTS_DIR}/{}",
        path.file_name().unwrap_or_default().to_string_lossy()
    );
    if std::env::var("HARDMUTE_BLESS_IMPORTS").is_ok_and(|v| v == "1") {
        let mut text = format!(
            "# Every symbol the {:?} slice of the HAL plug-in imports: `<symbol> <library>`.\n\
             # `cargo xtask cross-check macos` fails on any difference, naming it. After a reviewed\n\
             # change: HARDMUTE_BLESS_IMPORTS=1 cargo xtask cross-check macos\n",
            image.arch
        );
        for line in macho::import_lines(image) {
            text.push_str(&line);
            text.push('\n');
        }
        fs::create_dir_all(path.parent().context("imports dir")?)?;
        fs::write(&path, text)?;
        eprintln!("wrote {}", path.display());
    }
    let allowlist = fs::read_to_string(&path)
        .with_context(|| format!("reading {shown} (create it with HARDMUTE_BLESS_IMPORTS=1)"))?;
    macho::check_imports(image, &allowlist, &shown)
}

/// The pinned fixup format and deployment target, read back from the load commands.
fn check_plugin_load_commands(image: &MachOImage) -> Result<()> {
    ensure!(
        image.fixups == FixupFormat::DyldInfo,
        "fixups are {:?}, expected classic dyld info (-no_fixup_chains)",
        image.fixups
    );
    let (minos, sdk) = image
        .build_version
        .context("no LC_BUILD_VERSION for macOS")?;
    ensure!(
        minos == PLUGIN_MIN_MACOS && sdk == PLUGIN_SDK,
        "LC_BUILD_VERSION minos {minos} sdk {sdk}, expected minos {PLUGIN_MIN_MACOS} sdk {PLUGIN_SDK}"
    );
    Ok(())
}

/// Every rule for one plug-in slice (thin file or a slice of the universal one).
fn check_plugin(image: &MachOImage, arch: Arch) -> Result<()> {
    macho::check_bundle(image, &plugin_rules(arch))?;
    macho::check_exports_exactly(image, &[FACTORY])?;
    check_plugin_load_commands(image)?;
    check_plugin_imports(image)?;
    // The plug-in really uses CF (CFRetain/CFRelease of property values): a bundle that links CF
    // but binds nothing from it would mean the seam is not what we think it is.
    ensure!(
        image.binds_to(CORE_FOUNDATION).next().is_some(),
        "no symbol binds to CoreFoundation"
    );
    Ok(())
}

/// `build-bundle.sh` into the cache, then the universal executable and Info.plist are checked.
fn assemble_bundle(toolchain: &Toolchain, slices: &[PathBuf]) -> Result<()> {
    toolchain.verify(&["llvm-lipo"])?;
    let [arm, x86] = slices else {
        bail!("expected the arm64 and x86_64 plug-ins, got {slices:?}");
    };
    let out_dir = cache_root().join("macos-bundle");
    fs::create_dir_all(&out_dir)?;
    let version = env!("CARGO_PKG_VERSION");
    run(Command::new("bash")
        .arg(repo_root().join(BUNDLE_SCRIPT))
        .arg(&out_dir)
        .arg(version)
        .arg(arm)
        .arg(x86)
        .env("LIPO", toolchain.llvm("llvm-lipo")))?;
    let bundle = out_dir.join("HardMute.driver");
    let plist = read_plist(&bundle.join("Contents/Info.plist"))?;
    let info = check_info_plist(&plist, version)?;
    ensure!(
        bundle.join("Contents/Resources").is_dir(),
        "HardMute.driver has no Contents/Resources"
    );
    let executable = bundle.join("Contents/MacOS").join(&info.executable);
    let data = fs::read(&executable)
        .with_context(|| format!("CFBundleExecutable {} missing", executable.display()))?;
    let images = macho::parse_universal(&data)?;
    macho::check_universal_arches(&images, &[Arch::Arm64, Arch::X86_64])?;
    for image in &images {
        check_plugin(image, image.arch)
            .with_context(|| format!("{:?} slice of {}", image.arch, executable.display()))?;
        for function in &info.factory_functions {
            ensure!(
                image.exports.contains(&format!("_{function}")),
                "Info.plist names factory `{function}`, the {:?} slice does not export it",
                image.arch
            );
        }
    }
    eprintln!(
        "{}: universal {:?}, factory {} -> {}",
        bundle.display(),
        images.iter().map(|i| i.arch).collect::<Vec<_>>(),
        info.factory_uuids.join(", "),
        info.factory_functions.join(", ")
    );
    Ok(())
}

/// A property list as JSON, parsed by python3's plistlib (the XML and binary formats CFBundle
/// reads; dates and data become strings, which no rule here looks at).
pub fn read_plist(path: &Path) -> Result<Value> {
    const SCRIPT: &str = "import json,plistlib,sys\n\
        print(json.dumps(plistlib.load(open(sys.argv[1],'rb')), default=str))";
    let out = Command::new("python3")
        .args(["-c", SCRIPT])
        .arg(path)
        .output()
        .context("running python3 (plistlib)")?;
    ensure!(
        out.status.success(),
        "{} is not a valid property list: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    serde_json::from_slice(&out.stdout).context("plistlib output is not JSON")
}

/// What the plug-in's Info.plist says, once it passed [`check_info_plist`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverInfo {
    pub executable: String,
    /// Factory UUIDs registered for kAudioServerPlugInTypeUUID.
    pub factory_uuids: Vec<String>,
    /// The C functions those factories name (CFPlugInFactories values).
    pub factory_functions: Vec<String>,
}

/// `8-4-4-4-12` hex digits, as CFUUIDCreateFromString accepts them.
pub fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The rules coreaudiod's CFPlugIn lookup depends on, each violation listed: a loadable bundle
/// (`BNDL`, an executable name, the version filled in), kAudioServerPlugInTypeUUID in
/// CFPlugInTypes with at least one factory UUID, and each of those UUIDs in CFPlugInFactories
/// naming `AudioServerPlugIn_Factory`.
pub fn check_info_plist(plist: &Value, version: &str) -> Result<DriverInfo> {
    let mut problems = Vec::new();
    let string = |key: &str| plist[key].as_str().unwrap_or_default().to_owned();
    if string("CFBundlePackageType") != "BNDL" {
        problems.push(format!(
            "CFBundlePackageType is {}, expected \"BNDL\"",
            plist["CFBundlePackageType"]
        ));
    }
    let executable = string("CFBundleExecutable");
    if executable.is_empty() || executable.contains('/') {
        problems.push(format!(
            "CFBundleExecutable is {}, expected a file name",
            plist["CFBundleExecutable"]
        ));
    }
    if string("CFBundleIdentifier").is_empty() {
        problems.push("CFBundleIdentifier is missing".into());
    }
    for key in ["CFBundleVersion", "CFBundleShortVersionString"] {
        if string(key) != version {
            problems.push(format!("{key} is {}, expected {version:?}", plist[key]));
        }
    }
    let factories = plist["CFPlugInFactories"].as_object();
    if factories.is_none() {
        problems.push("CFPlugInFactories is not a dictionary".into());
    }
    for uuid in factories.into_iter().flat_map(|f| f.keys()) {
        if !is_uuid(uuid) {
            problems.push(format!("CFPlugInFactories key {uuid:?} is not a UUID"));
        }
    }
    let types = plist["CFPlugInTypes"].as_object();
    let registered = types.and_then(|t| {
        t.iter()
            .find(|(uuid, _)| uuid.eq_ignore_ascii_case(PLUGIN_TYPE_UUID))
            .map(|(_, v)| v)
    });
    let mut factory_uuids = Vec::new();
    let mut factory_functions = Vec::new();
    match registered.and_then(Value::as_array) {
        None => problems.push(format!(
            "CFPlugInTypes has no factory list for kAudioServerPlugInTypeUUID {PLUGIN_TYPE_UUID}"
        )),
        Some(list) if list.is_empty() => problems.push(format!(
            "CFPlugInTypes[{PLUGIN_TYPE_UUID}] names no factory"
        )),
        Some(list) => {
            for uuid in list {
                let Some(uuid) = uuid.as_str() else {
                    problems.push(format!(
                        "CFPlugInTypes[{PLUGIN_TYPE_UUID}] holds {uuid}, not a UUID string"
                    ));
                    continue;
                };
                let function = factories.and_then(|f| {
                    f.iter()
                        .find(|(key, _)| key.eq_ignore_ascii_case(uuid))
                        .map(|(_, v)| v)
                });
                match function.and_then(Value::as_str) {
                    Some(name) if name == FACTORY => {
                        factory_uuids.push(uuid.to_owned());
                        factory_functions.push(name.to_owned());
                    }
                    Some(name) => problems.push(format!(
                        "factory {uuid} names `{name}`, expected `{FACTORY}`"
                    )),
                    None => problems.push(format!(
                        "factory {uuid} (registered for the plug-in type) is not in CFPlugInFactories"
                    )),
                }
            }
        }
    }
    if !problems.is_empty() {
        bail!("Info.plist check failed:\n  - {}", problems.join("\n  - "));
    }
    Ok(DriverInfo {
        executable,
        factory_uuids,
        factory_functions,
    })
}

fn link_bridge_probe(toolchain: &Toolchain, target: &str) -> Result<()> {
    toolchain.verify(&["ld64.lld"])?;
    let arch = Arch::of_target(target).context("unknown arch")?;
    let sdk = stub_sdk(toolchain, target)?;
    let root = repo_root();
    let link_args = ld64_args(toolchain, &["-dead_strip_dylibs"]);
    let out = link(
        toolchain,
        &RustcLink {
            workspace: &root,
            final_src: &root
                .join(BRIDGE_DIR)
                .join("examples")
                .join(format!("{BRIDGE_EXAMPLE}.rs")),
            package: BRIDGE_PACKAGE,
            product: Product::Example(BRIDGE_EXAMPLE),
            target,
            build_std: BUILD_STD,
            sdkroot: Some(&sdk),
            link_args: &link_args,
            release: false,
        },
    )?;
    let image = MachOImage::parse(&fs::read(&out)?)?;
    eprintln!("{}: {}", out.display(), macho::summary(&image));
    macho::check_executable(
        &image,
        &ExecutableRules {
            arch,
            allowed_libraries: BRIDGE_LIBRARIES,
        },
    )?;
    ensure!(
        image.binds.contains(&macho::Bind {
            symbol: "_AudioObjectGetPropertyData".into(),
            target: macho::BindTarget::Library(CORE_AUDIO.into()),
        }),
        "_AudioObjectGetPropertyData is not bound to CoreAudio ({} CoreAudio binds)",
        image.binds_to(CORE_AUDIO).count()
    );
    Ok(())
}

/// The bytes of section `segment,section` of a thin Mach-O image (`None` = no such section).
pub fn macho_section(data: &[u8], segment: &str, section: &str) -> Result<Option<Vec<u8>>> {
    use object::read::macho::MachOFile64;
    use object::{Endianness, Object, ObjectSection};
    let file = MachOFile64::<Endianness>::parse(data).context("not a 64-bit Mach-O image")?;
    for s in file.sections() {
        if s.segment_name()? == Some(segment) && s.name()? == section {
            return Ok(Some(s.data()?.to_vec()));
        }
    }
    Ok(None)
}

/// `hardmuted` linked the way it ships on macOS and checked (see the module docs).
fn link_daemon(toolchain: &Toolchain, target: &str) -> Result<()> {
    toolchain.verify(&["ld64.lld"])?;
    let arch = Arch::of_target(target).context("unknown arch")?;
    let sdk = stub_sdk(toolchain, target)?;
    let root = repo_root();
    let plist = root.join(DAEMON_INFO_PLIST);
    let plist = plist.to_str().context("non-UTF-8 repository path")?;
    let link_args = ld64_args(
        toolchain,
        &[
            "-dead_strip_dylibs",
            "-sectcreate",
            "__TEXT",
            "__info_plist",
            plist,
        ],
    );
    let out = link(
        toolchain,
        &RustcLink {
            workspace: &root,
            final_src: &root.join(DAEMON_DIR).join("src/main.rs"),
            package: DAEMON_PACKAGE,
            product: Product::Bin(DAEMON_PACKAGE),
            target,
            build_std: BUILD_STD,
            sdkroot: Some(&sdk),
            link_args: &link_args,
            release: false,
        },
    )?;
    let data = fs::read(&out)?;
    let image = MachOImage::parse(&data)?;
    eprintln!("{}: {}", out.display(), macho::summary(&image));
    macho::check_executable(
        &image,
        &ExecutableRules {
            arch,
            allowed_libraries: BRIDGE_LIBRARIES,
        },
    )?;
    let mut missing = Vec::new();
    for (symbol, library) in [
        ("_AudioObjectAddPropertyListener", CORE_AUDIO),
        ("_AudioObjectRemovePropertyListener", CORE_AUDIO),
        ("_AudioObjectSetPropertyData", CORE_AUDIO),
        ("_AudioOutputUnitStart", AUDIO_TOOLBOX),
    ] {
        let bind = macho::Bind {
            symbol: symbol.into(),
            target: macho::BindTarget::Library(library.into()),
        };
        if !image.binds.contains(&bind) {
            missing.push(format!("{symbol} -> {library}"));
        }
    }
    ensure!(
        missing.is_empty(),
        "not bound two-level as expected: {}",
        missing.join(", ")
    );
    let embedded = macho_section(&data, "__TEXT", "__info_plist")?
        .context("no __TEXT,__info_plist section (the plug-in would not see our bundle id)")?;
    let copy = out.with_file_name("hardmuted-embedded-Info.plist");
    fs::write(&copy, &embedded)?;
    let info = read_plist(&copy)?;
    ensure!(
        info["CFBundleIdentifier"] == DAEMON_BUNDLE_ID,
        "embedded CFBundleIdentifier is {}, expected {DAEMON_BUNDLE_ID}",
        info["CFBundleIdentifier"]
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FACTORY_UUID: &str = "A014A9E6-6396-4BDE-B929-2640A74AA46D";

    fn good() -> Value {
        json!({
            "CFBundleExecutable": "HardMute",
            "CFBundleIdentifier": "org.hardmute.driver",
            "CFBundlePackageType": "BNDL",
            "CFBundleVersion": "1.2.3",
            "CFBundleShortVersionString": "1.2.3",
            "CFPlugInFactories": { FACTORY_UUID: FACTORY },
            "CFPlugInTypes": { PLUGIN_TYPE_UUID: [FACTORY_UUID] },
        })
    }

    fn problems(plist: &Value) -> String {
        check_info_plist(plist, "1.2.3").unwrap_err().to_string()
    }

    #[test]
    fn a_good_driver_plist_yields_its_factory() {
        let info = check_info_plist(&good(), "1.2.3").unwrap();
        assert_eq!(info.executable, "HardMute");
        assert_eq!(info.factory_uuids, [FACTORY_UUID]);
        assert_eq!(info.factory_functions, [FACTORY]);
        // CFUUID strings compare case-insensitively.
        let mut lower = good();
        lower["CFPlugInTypes"] = json!({ PLUGIN_TYPE_UUID.to_lowercase(): [FACTORY_UUID] });
        assert!(check_info_plist(&lower, "1.2.3").is_ok());
    }

    #[test]
    fn the_factory_must_be_registered_for_the_plugin_type_and_named_right() {
        let mut other_type = good();
        other_type["CFPlugInTypes"] = json!({ FACTORY_UUID: [FACTORY_UUID] });
        assert!(problems(&other_type).contains("no factory list for kAudioServerPlugInTypeUUID"));

        let mut empty = good();
        empty["CFPlugInTypes"] = json!({ PLUGIN_TYPE_UUID: [] });
        assert!(problems(&empty).contains("names no factory"));

        let mut unlisted = good();
        unlisted["CFPlugInFactories"] = json!({ "11111111-2222-3333-4444-555555555555": FACTORY });
        let err = problems(&unlisted);
        assert!(err.contains("is not in CFPlugInFactories"), "{err}");

        let mut renamed = good();
        renamed["CFPlugInFactories"] = json!({ FACTORY_UUID: "HardMute_Factory" });
        assert!(problems(&renamed).contains("names `HardMute_Factory`"));

        let mut bad_key = good();
        bad_key["CFPlugInFactories"]["not-a-uuid"] = json!(FACTORY);
        assert!(problems(&bad_key).contains("\"not-a-uuid\" is not a UUID"));
    }

    #[test]
    fn bundle_keys_and_the_filled_version_are_checked_all_at_once() {
        let mut plist = good();
        plist["CFBundlePackageType"] = json!("APPL");
        plist["CFBundleVersion"] = json!("@VERSION@");
        plist.as_object_mut().unwrap().remove("CFBundleExecutable");
        let err = problems(&plist);
        assert!(err.contains("CFBundlePackageType"), "{err}");
        assert!(err.contains("CFBundleVersion is \"@VERSION@\""), "{err}");
        assert!(err.contains("CFBundleExecutable"), "{err}");
        assert!(!err.contains("CFBundleShortVersionString"), "{err}");
    }

    #[test]
    fn the_pinned_fixup_format_and_deployment_target_are_asserted() {
        let good = MachOImage {
            arch: Arch::X86_64,
            filetype: object::macho::MH_BUNDLE.0,
            flags: object::macho::MH_TWOLEVEL.0,
            fixups: FixupFormat::DyldInfo,
            libraries: vec![LIBSYSTEM.into()],
            exports: Default::default(),
            binds: Default::default(),
            build_version: Some((PLUGIN_MIN_MACOS, PLUGIN_SDK)),
        };
        check_plugin_load_commands(&good).unwrap();
        let chained = MachOImage {
            fixups: FixupFormat::ChainedFixups,
            ..good.clone()
        };
        let err = check_plugin_load_commands(&chained)
            .unwrap_err()
            .to_string();
        assert!(err.contains("ChainedFixups"), "{err}");
        let old = MachOImage {
            build_version: Some((OsVersion(10, 12, 0), OsVersion(10, 12, 0))),
            ..good.clone()
        };
        let err = check_plugin_load_commands(&old).unwrap_err().to_string();
        assert!(err.contains("minos 10.12"), "{err}");
        let none = MachOImage {
            build_version: None,
            ..good
        };
        assert!(check_plugin_load_commands(&none).is_err());
        // The flags that pin them are the ones the plug-in is linked with.
        assert!(PLUGIN_LINK_FLAGS.contains(&"-no_fixup_chains"));
        let pv = PLUGIN_LINK_FLAGS
            .iter()
            .position(|f| *f == "-platform_version")
            .unwrap();
        assert_eq!(PLUGIN_LINK_FLAGS[pv + 1..pv + 4], ["macos", "11.0", "11.0"]);
        assert_eq!(PLUGIN_MIN_MACOS.to_string(), "11.0");
    }

    #[test]
    fn uuid_shape() {
        assert!(is_uuid(PLUGIN_TYPE_UUID));
        assert!(is_uuid(&FACTORY_UUID.to_lowercase()));
        assert!(!is_uuid("443ABAB8-E7B3-491A-B985-BEB9187030D"));
        assert!(!is_uuid("443ABAB8E7B3-491A-B985-BEB9187030DB0"));
        assert!(!is_uuid("443ABAB8-E7B3-491A-B985-BEB9187030DG"));
    }

    #[test]
    fn plistlib_reads_the_shipped_template_into_the_same_rules() {
        // The installer's own template, version substituted as build-bundle.sh does.
        let template =
            fs::read_to_string(repo_root().join("installer/macos/Info.plist.in")).unwrap();
        let dir = std::env::temp_dir().join(format!("xtask-plist-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("Info.plist");
        fs::write(&path, template.replace("@VERSION@", "9.8.7")).unwrap();
        let plist = read_plist(&path).unwrap();
        let info = check_info_plist(&plist, "9.8.7").unwrap();
        assert_eq!(info.factory_functions, [FACTORY]);
        assert!(check_info_plist(&plist, "1.0.0").is_err());
        fs::write(&path, "<plist><dict><key>x</key></dict>").unwrap();
        assert!(read_plist(&path).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
