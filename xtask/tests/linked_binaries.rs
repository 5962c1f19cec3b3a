//! The inspection helpers against real binaries: tiny C objects (clang) linked by LLVM 22's
//! ld64.lld / lld-link against stubs the tests write themselves, in good and in broken variants.
//! Every rule of `check_bundle` / `check_dll` / `check_driver` is shown to fail on a binary that
//! breaks it. Needs clang + lld-22 + llvm-22 (`cargo xtask cross-check deps`); ignored without.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use xtask::inspect::macho::{
    check_bundle, check_executable, check_exports_exactly, check_universal_arches, parse_universal,
    Arch, Bind, BindTarget, BundleRules, ExecutableRules, FixupFormat, MachOImage,
};
use xtask::inspect::pe::{check_dll, check_driver, DllRules, DriverRules, PeImage};
use xtask::macos_sdk::{write_sdk, StubLibrary};

const LLVM: &str = "/usr/lib/llvm-22/bin";
const LIBSYSTEM: &str = "/usr/lib/libSystem.B.dylib";
const CF: &str = "/System/Library/Frameworks/CoreFoundation.framework/Versions/A/CoreFoundation";
const NEEDS_TOOLS: &str = "needs clang + lld-22 + llvm-22: run `cargo xtask cross-check deps`";

/// A scratch directory removed when the test ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("xtask-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn compile(scratch: &Scratch, target: &str, name: &str, source: &str) -> PathBuf {
    let src = scratch.path(&format!("{name}.c"));
    let obj = scratch.path(&format!("{name}.o"));
    fs::write(&src, source).unwrap();
    run(Command::new("clang")
        .args([&format!("--target={target}"), "-O1", "-c"])
        .arg(&src)
        .arg("-o")
        .arg(&obj))
    .unwrap();
    obj
}

fn symbols(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// A stub SDK with a tiny libSystem and CoreFoundation, through the real SDK writer.
fn stub_sdk(scratch: &Scratch) -> PathBuf {
    let root = scratch.path("sdk");
    let libsystem = StubLibrary {
        path: "usr/lib/libSystem.tbd".into(),
        install_name: LIBSYSTEM.into(),
        symbols: symbols(&["_puts", "dyld_stub_binder"]),
    };
    let cf = StubLibrary::framework("CoreFoundation", symbols(&["_CFAbsoluteTimeGetCurrent"]));
    write_sdk(&root, &libsystem.to_tbd(), &[cf]).unwrap();
    root
}

const PLUGIN_C: &str = r#"
extern int puts(const char *);
extern double CFAbsoluteTimeGetCurrent(void);
int HardMuteTest_Factory(void) { return puts("x") + (int)CFAbsoluteTimeGetCurrent(); }
"#;

/// Links `obj` with ld64.lld; `extra` replaces nothing, it is appended (later flags win).
fn ld64(
    scratch: &Scratch,
    arch: &str,
    obj: &Path,
    out: &str,
    extra: &[&str],
) -> Result<PathBuf, String> {
    let sdk = stub_sdk(scratch);
    let out = scratch.path(out);
    run(Command::new(format!("{LLVM}/ld64.lld"))
        .args([
            "-arch",
            arch,
            "-platform_version",
            "macos",
            "11.0",
            "14.0",
            "-bundle",
        ])
        .arg("-syslibroot")
        .arg(&sdk)
        .args(["-lSystem", "-framework", "CoreFoundation"])
        .args(extra)
        .arg(obj)
        .arg("-o")
        .arg(&out))?;
    Ok(out)
}

fn plugin_bundle(scratch: &Scratch, arch: &str, extra: &[&str]) -> PathBuf {
    let triple = if arch == "arm64" {
        "arm64-apple-macos11"
    } else {
        "x86_64-apple-macos11"
    };
    let obj = compile(scratch, triple, &format!("plugin-{arch}"), PLUGIN_C);
    ld64(scratch, arch, &obj, &format!("plugin-{arch}.bundle"), extra).unwrap()
}

fn parse(path: &Path) -> MachOImage {
    MachOImage::parse(&fs::read(path).unwrap()).unwrap()
}

const PLUGIN_RULES: BundleRules<'static> = BundleRules {
    arch: Arch::Arm64,
    exports: &["HardMuteTest_Factory"],
    allowed_libraries: &[LIBSYSTEM, CF],
};

fn bind(symbol: &str, library: &str) -> Bind {
    Bind {
        symbol: symbol.into(),
        target: BindTarget::Library(library.into()),
    }
}

#[test]
#[cfg_attr(
    not(xcheck_tools),
    ignore = "needs clang + lld-22 + llvm-22: run `cargo xtask cross-check deps`"
)]
fn a_good_bundle_passes_and_every_bind_names_its_library() {
    let scratch = Scratch::new("good-bundle");
    let image = parse(&plugin_bundle(&scratch, "arm64", &[]));
    check_bundle(&image, &PLUGIN_RULES).unwrap();
    assert!(image.is_bundle() && image.is_two_level());
    assert_eq!(image.fixups, FixupFormat::DyldInfo);
    assert_eq!(image.libraries, [LIBSYSTEM, CF]);
    assert!(image.exports.contains("_HardMuteTest_Factory"));
    assert!(image.binds.contains(&bind("_puts", LIBSYSTEM)));
    assert!(image.binds.contains(&bind("_CFAbsoluteTimeGetCurrent", CF)));
    assert!(image.flat_binds().is_empty());
    let _ = NEEDS_TOOLS;
}

#[test]
#[cfg_attr(
    not(xcheck_tools),
    ignore = "needs clang + lld-22 + llvm-22: run `cargo xtask cross-check deps`"
)]
fn chained_fixup_imports_are_read_too() {
    let scratch = Scratch::new("chained");
    let obj = compile(&scratch, "arm64-apple-macos13", "plugin", PLUGIN_C);
    let out = ld64(
        &scratch,
        "arm64",
        &obj,
        "chained.bundle",
        &[
            "-platform_version",
            "macos",
            "13.0",
            "14.0",
            "-fixup_chains",
        ],
    )
    .unwrap();
    let image = parse(&out);
    assert_eq!(image.fixups, FixupFormat::ChainedFixups);
    assert!(image.binds.contains(&bind("_puts", LIBSYSTEM)));
    assert!(image.binds.contains(&bind("_CFAbsoluteTimeGetCurrent", CF)));
    check_bundle(&image, &PLUGIN_RULES).unwrap();
}

#[test]
#[cfg_attr(
    not(xcheck_tools),
    ignore = "needs clang + lld-22 + llvm-22: run `cargo xtask cross-check deps`"
)]
fn flat_namespace_lookups_are_caught_with_the_symbol_name() {
    let scratch = Scratch::new("flat");
    let src = format!(
        "{PLUGIN_C}\nextern int NotInAnySdk(void);\nint Other(void) {{ return NotInAnySdk(); }}\n"
    );
    let obj = compile(&scratch, "arm64-apple-macos11", "flat", &src);
    // Without dynamic_lookup the stub SDK turns the typo into a link error...
    let err = ld64(&scratch, "arm64", &obj, "strict.bundle", &[]).unwrap_err();
    assert!(err.contains("NotInAnySdk"), "{err}");
    // ...with it, the link succeeds and the check must catch the flat bind.
    for chained in [false, true] {
        let extra: &[&str] = if chained {
            &[
                "-undefined",
                "dynamic_lookup",
                "-platform_version",
                "macos",
                "13.0",
                "14.0",
                "-fixup_chains",
            ]
        } else {
            &["-undefined", "dynamic_lookup"]
        };
        let out = ld64(
            &scratch,
            "arm64",
            &obj,
            &format!("flat-{chained}.bundle"),
            extra,
        )
        .unwrap();
        let image = parse(&out);
        assert_eq!(
            image
                .flat_binds()
                .iter()
                .map(|b| b.symbol.as_str())
                .collect::<Vec<_>>(),
            ["_NotInAnySdk"]
        );
        let err = check_bundle(&image, &PLUGIN_RULES).unwrap_err().to_string();
        assert!(
            err.contains("flat-namespace") && err.contains("_NotInAnySdk"),
            "{err}"
        );
    }
}

#[test]
#[cfg_attr(
    not(xcheck_tools),
    ignore = "needs clang + lld-22 + llvm-22: run `cargo xtask cross-check deps`"
)]
fn wrong_file_type_library_export_and_arch_are_each_reported() {
    let scratch = Scratch::new("violations");
    // `-dylib` after `-bundle`: ld64 takes the last one, so this is an MH_DYLIB.
    let dylib = parse(&plugin_bundle(&scratch, "arm64", &["-dylib"]));
    let err = check_bundle(&dylib, &PLUGIN_RULES).unwrap_err().to_string();
    assert!(err.contains("expected MH_BUNDLE"), "{err}");

    let good = parse(&plugin_bundle(&scratch, "arm64", &[]));
    let only_libsystem = BundleRules {
        allowed_libraries: &[LIBSYSTEM],
        ..PLUGIN_RULES
    };
    let err = check_bundle(&good, &only_libsystem)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not allowed: /System/Library/Frameworks/CoreFoundation"),
        "{err}"
    );

    let factory = BundleRules {
        exports: &["AudioServerPlugIn_Factory"],
        ..PLUGIN_RULES
    };
    let err = check_bundle(&good, &factory).unwrap_err().to_string();
    assert!(
        err.contains("`AudioServerPlugIn_Factory` is not exported"),
        "{err}"
    );

    let x86 = BundleRules {
        arch: Arch::X86_64,
        ..PLUGIN_RULES
    };
    assert!(check_bundle(&good, &x86)
        .unwrap_err()
        .to_string()
        .contains("arch is Arm64"));
}

#[test]
#[cfg_attr(
    not(xcheck_tools),
    ignore = "needs clang + lld-22 + llvm-22: run `cargo xtask cross-check deps`"
)]
fn lipo_universal_file_holds_both_slices() {
    let scratch = Scratch::new("lipo");
    let arm = plugin_bundle(&scratch, "arm64", &[]);
    let x86 = plugin_bundle(&scratch, "x86_64", &[]);
    let fat = scratch.path("HardMute");
    run(Command::new(format!("{LLVM}/llvm-lipo"))
        .arg("-create")
        .arg(&arm)
        .arg(&x86)
        .arg("-output")
        .arg(&fat))
    .unwrap();
    let slices = parse_universal(&fs::read(&fat).unwrap()).unwrap();
    check_universal_arches(&slices, &[Arch::X86_64, Arch::Arm64]).unwrap();
    assert!(check_universal_arches(&slices, &[Arch::Arm64]).is_err());
    for slice in &slices {
        check_bundle(
            slice,
            &BundleRules {
                arch: slice.arch,
                ..PLUGIN_RULES
            },
        )
        .unwrap();
    }
    // A thin file is one slice.
    let thin = parse_universal(&fs::read(&arm).unwrap()).unwrap();
    assert_eq!(thin.len(), 1);
    assert!(check_universal_arches(&thin, &[Arch::Arm64, Arch::X86_64]).is_err());
}

#[test]
#[cfg_attr(
    not(xcheck_tools),
    ignore = "needs clang + lld-22 + llvm-22: run `cargo xtask cross-check deps`"
)]
fn only_the_factory_may_be_exported() {
    let scratch = Scratch::new("exports");
    let good = parse(&plugin_bundle(&scratch, "arm64", &[]));
    check_exports_exactly(&good, &["HardMuteTest_Factory"]).unwrap();
    let err = check_exports_exactly(&good, &["HardMuteTest_Factory", "Missing"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("not exported: _Missing"), "{err}");

    let src = format!("{PLUGIN_C}\nint HardMuteTest_Internal(int x) {{ return x + 1; }}\n");
    let obj = compile(&scratch, "arm64-apple-macos11", "leaky", &src);
    let leaky = parse(&ld64(&scratch, "arm64", &obj, "leaky.bundle", &[]).unwrap());
    // The factory is there, so the bundle rules alone pass: only the exact-export rule sees it.
    check_bundle(&leaky, &PLUGIN_RULES).unwrap();
    let err = check_exports_exactly(&leaky, &["HardMuteTest_Factory"])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("1 unexpected exports: _HardMuteTest_Internal"),
        "{err}"
    );
}

const PROGRAM_C: &str = r#"
extern int puts(const char *);
extern double CFAbsoluteTimeGetCurrent(void);
int main(void) { return puts("x") + (int)CFAbsoluteTimeGetCurrent(); }
"#;

#[test]
#[cfg_attr(
    not(xcheck_tools),
    ignore = "needs clang + lld-22 + llvm-22: run `cargo xtask cross-check deps`"
)]
fn executables_get_the_linkage_rules_as_mh_execute() {
    let scratch = Scratch::new("executable");
    let obj = compile(&scratch, "arm64-apple-macos11", "program", PROGRAM_C);
    let program = parse(&ld64(&scratch, "arm64", &obj, "program", &["-execute"]).unwrap());
    let rules = ExecutableRules {
        arch: Arch::Arm64,
        allowed_libraries: &[LIBSYSTEM, CF],
    };
    check_executable(&program, &rules).unwrap();
    assert!(program.is_executable() && !program.is_bundle());
    assert!(program
        .binds
        .contains(&bind("_CFAbsoluteTimeGetCurrent", CF)));

    // A bundle is not a program, and a program is not a bundle.
    let bundle = parse(&plugin_bundle(&scratch, "arm64", &[]));
    let err = check_executable(&bundle, &rules).unwrap_err().to_string();
    assert!(err.contains("expected MH_EXECUTE"), "{err}");
    let err = check_bundle(&program, &PLUGIN_RULES)
        .unwrap_err()
        .to_string();
    assert!(err.contains("expected MH_BUNDLE"), "{err}");

    let err = check_executable(
        &program,
        &ExecutableRules {
            allowed_libraries: &[LIBSYSTEM],
            ..rules
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("not allowed: /System/Library/Frameworks/CoreFoundation"),
        "{err}"
    );

    let src = format!(
        "{PROGRAM_C}\nextern int NotInAnySdk(void);\nint Other(void) {{ return NotInAnySdk(); }}\n"
    );
    let obj = compile(&scratch, "arm64-apple-macos11", "flat-program", &src);
    let flat = parse(
        &ld64(
            &scratch,
            "arm64",
            &obj,
            "flat-program",
            &["-execute", "-undefined", "dynamic_lookup"],
        )
        .unwrap(),
    );
    let err = check_executable(&flat, &rules).unwrap_err().to_string();
    assert!(
        err.contains("flat-namespace") && err.contains("_NotInAnySdk"),
        "{err}"
    );
}

// ---------------------------------------------------------------- PE

fn import_lib(scratch: &Scratch, dll: &str, functions: &[&str]) -> PathBuf {
    let def = scratch.path(&format!("{dll}.def"));
    let lib = scratch.path(&format!("{dll}.lib"));
    fs::write(
        &def,
        format!("LIBRARY {dll}\nEXPORTS\n{}\n", functions.join("\n")),
    )
    .unwrap();
    run(Command::new(format!("{LLVM}/llvm-dlltool"))
        .args(["-m", "i386:x86-64", "-d"])
        .arg(&def)
        .arg("-l")
        .arg(&lib))
    .unwrap();
    lib
}

fn lld_link(scratch: &Scratch, out: &str, inputs: &[PathBuf], flags: &[&str]) -> PeImage {
    let out = scratch.path(out);
    run(Command::new(format!("{LLVM}/lld-link"))
        .args(["/nologo", "/nodefaultlib"])
        .args(flags)
        .args(inputs)
        .arg(format!("/out:{}", out.display())))
    .unwrap();
    PeImage::parse(&fs::read(&out).unwrap()).unwrap()
}

const DLL_C: &str = r#"
__declspec(dllimport) unsigned long long GetTickCount64(void);
__declspec(dllimport) int MessageBeep(unsigned int);
__declspec(dllexport) unsigned long long hardmute_ticks(void) { return GetTickCount64(); }
__declspec(dllexport) int hardmute_beep(void) { return MessageBeep(0); }
"#;

const DRIVER_C: &str = r#"
__declspec(dllimport) unsigned long KeQueryTimeIncrement(void);
__declspec(dllexport) long DriverEntry(void *driver, void *path) { return KeQueryTimeIncrement() ? 0 : -1; }
__declspec(dllexport) long NotTheEntry(void *driver, void *path) { return 1; }
"#;

#[test]
#[cfg_attr(
    not(xcheck_tools),
    ignore = "needs clang + lld-22 + llvm-22: run `cargo xtask cross-check deps`"
)]
fn dll_exports_and_imports_are_read_and_checked() {
    let scratch = Scratch::new("dll");
    let obj = compile(&scratch, "x86_64-pc-windows-msvc", "dll", DLL_C);
    let k32 = import_lib(&scratch, "kernel32.dll", &["GetTickCount64"]);
    let u32lib = import_lib(&scratch, "user32.dll", &["MessageBeep"]);
    let image = lld_link(
        &scratch,
        "t.dll",
        &[obj, k32, u32lib],
        &["/dll", "/noentry"],
    );
    assert!(image.is_amd64() && image.is_dll() && !image.is_native());
    assert_eq!(
        image.exports.keys().collect::<Vec<_>>(),
        ["hardmute_beep", "hardmute_ticks"]
    );
    assert_eq!(image.imports["kernel32.dll"], symbols(&["GetTickCount64"]));
    assert_eq!(image.imports["user32.dll"], symbols(&["MessageBeep"]));
    let both = DllRules {
        exports: &["hardmute_ticks"],
        allowed_imports: &["KERNEL32.dll", "user32.dll"],
    };
    check_dll(&image, &both).unwrap();
    let err = check_dll(
        &image,
        &DllRules {
            allowed_imports: &["kernel32.dll"],
            ..both
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("imports from user32.dll") && err.contains("MessageBeep"),
        "{err}"
    );
    let err = check_dll(
        &image,
        &DllRules {
            exports: &["missing_fn"],
            ..both
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("`missing_fn` is not exported"), "{err}");
}

#[test]
#[cfg_attr(
    not(xcheck_tools),
    ignore = "needs clang + lld-22 + llvm-22: run `cargo xtask cross-check deps`"
)]
fn driver_entry_point_and_subsystem_are_checked() {
    let scratch = Scratch::new("driver");
    let obj = compile(&scratch, "x86_64-pc-windows-msvc", "drv", DRIVER_C);
    let nt = import_lib(&scratch, "ntoskrnl.exe", &["KeQueryTimeIncrement"]);
    let rules = DriverRules {
        entry: "DriverEntry",
        allowed_imports: &["ntoskrnl.exe"],
    };
    let native = ["/driver", "/subsystem:native"];

    let good = lld_link(
        &scratch,
        "good.sys",
        &[obj.clone(), nt.clone()],
        &[&native[..], &["/entry:DriverEntry"]].concat(),
    );
    check_driver(&good, &rules).unwrap();
    assert_eq!(good.entry_export(), Some("DriverEntry"));
    assert_eq!(
        good.imports["ntoskrnl.exe"],
        symbols(&["KeQueryTimeIncrement"])
    );

    let wrong_entry = lld_link(
        &scratch,
        "entry.sys",
        &[obj.clone(), nt.clone()],
        &[&native[..], &["/entry:NotTheEntry"]].concat(),
    );
    let err = check_driver(&wrong_entry, &rules).unwrap_err().to_string();
    assert!(
        err.contains("is not `DriverEntry`") && err.contains("NotTheEntry"),
        "{err}"
    );

    let user_mode = lld_link(
        &scratch,
        "gui.sys",
        &[obj, nt],
        &["/dll", "/subsystem:windows", "/entry:DriverEntry"],
    );
    let err = check_driver(&user_mode, &rules).unwrap_err().to_string();
    assert!(err.contains("expected NATIVE"), "{err}");
    let err = check_driver(
        &good,
        &DriverRules {
            allowed_imports: &["hal.dll"],
            ..rules
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("imports from ntoskrnl.exe"), "{err}");
}

#[test]
fn garbage_is_rejected_not_misread() {
    assert!(MachOImage::parse(b"\x7fELF not a mach-o").is_err());
    assert!(PeImage::parse(b"MZ but nothing else").is_err());
    assert!(parse_universal(&[0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 9]).is_err());
}
