//! `windows-user`: the userspace crates that claim Windows, built and LINKED for both Windows
//! targets, each program checked as a PE32+ that imports only system DLLs, console subsystem
//! unless listed in `gui-programs` (then WINDOWS_GUI: no console window at logon). A crate opts
//! in from its own manifest (the table's presence is the claim):
//!
//! ```toml
//! [package.metadata.hardmute.windows]
//! wine-tests = ["lib", "test:ipc"]   # optional: run under wine by `windows-wine`
//! gui-programs = ["hardmuted"]       # optional: programs built with windows_subsystem = "windows"
//! ```
//!
//! - x86_64-pc-windows-msvc, as shipped (panic = abort, Debian's std): lld-link with no VC++
//!   libraries. `windows-sys`/`windows` import through raw-dylib; std's own imports (kernel32,
//!   ntdll, userenv, ws2_32, dbghelp, the UCRT) resolve against mingw-w64's import libraries,
//!   found through lld-link's `LIB` search path as `<name>.lib`, and `msvcrt.lib` is the
//!   project's small CRT shim (`xtask/shims/msvc-crt.c`: entry point, TLS directory, `__chkstk`).
//! - x86_64-pc-windows-gnu with mingw gcc, panic = unwind: the same std build the wine tests
//!   use (one gnu std, not two).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;

use super::{
    target_config, units_target_dir, verify_clippy, Units, GNU, MINGW_GCC, MINGW_LIB, MSVC,
    SYSTEM_DLLS,
};
use crate::inspect::pe::{self, ExeRules, PeImage, SUBSYSTEM_CONSOLE, SUBSYSTEM_GUI};
use crate::report::Report;
use crate::targets::crates::BUILD_STD;
use crate::toolchain::{cache_root, repo_root, run, Toolchain};

/// One crate's `[package.metadata.hardmute.windows]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub package: String,
    /// Its programs (`<name>.exe`) and their root source files.
    pub bins: Vec<(String, PathBuf)>,
    pub wine_tests: Vec<TestTarget>,
    /// Programs that must be GUI-subsystem executables (the rest: console).
    pub gui: Vec<String>,
}

/// A test target `windows-wine` runs, as cargo selects it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestTarget {
    Lib,
    Bins,
    Test(String),
}

impl TestTarget {
    fn parse(spec: &str) -> Result<Self> {
        Ok(match spec {
            "lib" => TestTarget::Lib,
            "bins" => TestTarget::Bins,
            _ => match spec.strip_prefix("test:") {
                Some(name) if !name.is_empty() => TestTarget::Test(name.to_owned()),
                _ => bail!("unknown wine-tests entry `{spec}` (known: lib, bins, test:<name>)"),
            },
        })
    }

    /// The cargo arguments selecting this target.
    pub fn cargo_args(&self) -> Vec<String> {
        match self {
            TestTarget::Lib => vec!["--lib".into()],
            TestTarget::Bins => vec!["--bins".into()],
            TestTarget::Test(name) => vec!["--test".into(), name.clone()],
        }
    }
}

/// Claims from `cargo metadata --no-deps` JSON, in workspace order.
pub fn claims(metadata: &Value) -> Result<Vec<Claim>> {
    let mut out = Vec::new();
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let name = package["name"].as_str().unwrap_or_default();
        let table = &package["metadata"]["hardmute"]["windows"];
        if table.is_null() {
            continue;
        }
        let Some(table) = table.as_object() else {
            bail!("{name}: package.metadata.hardmute.windows must be a table");
        };
        if let Some(key) = table
            .keys()
            .find(|k| *k != "wine-tests" && *k != "gui-programs")
        {
            bail!("{name}: unknown key `{key}` in package.metadata.hardmute.windows");
        }
        let wine_tests = match table.get("wine-tests") {
            None => Vec::new(),
            Some(Value::Array(list)) => list
                .iter()
                .map(|v| TestTarget::parse(v.as_str().unwrap_or_default()))
                .collect::<Result<_>>()
                .with_context(|| format!("{name}: package.metadata.hardmute.windows"))?,
            Some(_) => bail!("{name}: wine-tests must be a list"),
        };
        let bins: Vec<(String, PathBuf)> = package["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| {
                t["kind"]
                    .as_array()
                    .is_some_and(|k| k.iter().any(|k| k == "bin"))
            })
            .filter_map(|t| {
                Some((
                    t["name"].as_str()?.to_owned(),
                    t["src_path"].as_str()?.into(),
                ))
            })
            .collect();
        let gui = match table.get("gui-programs") {
            None => Vec::new(),
            Some(Value::Array(list)) => list
                .iter()
                .map(|v| {
                    let program = v.as_str().unwrap_or_default();
                    ensure!(
                        bins.iter().any(|(b, _)| b == program),
                        "{name}: gui-programs lists `{program}`, which is not one of its programs"
                    );
                    Ok(program.to_owned())
                })
                .collect::<Result<_>>()?,
            Some(_) => bail!("{name}: gui-programs must be a list"),
        };
        out.push(Claim {
            package: name.to_owned(),
            bins,
            wine_tests,
            gui,
        });
    }
    Ok(out)
}

pub fn workspace_claims(toolchain: &Toolchain) -> Result<Vec<Claim>> {
    let out = toolchain
        .cargo(&repo_root())
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .context("running cargo metadata")?;
    ensure!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    claims(&serde_json::from_slice(&out.stdout)?)
}

pub fn run_rows(toolchain: &Toolchain, report: &mut Report) {
    let claimed = match workspace_claims(toolchain) {
        Ok(c) if c.is_empty() => {
            report.skip(
                "windows-user",
                "(none)",
                "no crate declares package.metadata.hardmute.windows",
            );
            return;
        }
        Ok(c) => c,
        Err(e) => {
            report.step("windows-user", "(metadata)", || Err(e));
            return;
        }
    };
    for target in [MSVC, GNU] {
        report.step_noted("windows-user", target, || {
            build_and_check(
                toolchain,
                &repo_root(),
                &build_target_dir(target),
                target,
                &claimed,
            )
            .map(Some)
        });
    }
    // Lints that only fire for Windows (cfg(windows) code, Windows-only type widths).
    report.step("windows-user", &format!("{MSVC} clippy"), || {
        clippy(toolchain, MSVC, &claimed)
    });
    report.step(
        "windows-user",
        &format!("{GNU} clippy --all-targets"),
        || clippy(toolchain, GNU, &claimed),
    );
}

/// `cargo clippy -D warnings` of the claimed crates for a Windows target. msvc: `--lib --bins`
/// with the shipped panic = abort std (the `crates` stage's check dir; test targets need an
/// unwinding std); gnu: `--all-targets` (the Windows-only tests too) with its own check std.
/// No linker setting: check builds never link, and cargo fingerprints the linker.
fn clippy(toolchain: &Toolchain, target: &str, claimed: &[Claim]) -> Result<()> {
    verify_clippy(toolchain)?;
    let mut cmd = toolchain.cargo(&repo_root());
    // --no-deps: lint the claimed crates, not their path dependencies (tests/alloc-counter
    // trips clippy's `thread_local` const lint only inside std's Windows-gnu macro expansion).
    cmd.args(["clippy", "--no-deps", "--target", target]);
    if target == MSVC {
        cmd.args(["--lib", "--bins"]).args(BUILD_STD);
    } else {
        cmd.args(["--all-targets", "-Zbuild-std"]);
    }
    for claim in claimed {
        cmd.args(["--package", &claim.package]);
    }
    cmd.arg("--target-dir")
        .arg(units_target_dir(target, true, Units::Check));
    run(cmd.args(["--", "-D", "warnings"]))
}

/// Builds the claimed crates (lib + bins) for `target` in `workspace` and checks every
/// program; returns the row's note.
pub fn build_and_check(
    toolchain: &Toolchain,
    workspace: &Path,
    target_dir: &Path,
    target: &str,
    claimed: &[Claim],
) -> Result<String> {
    let mut cmd = toolchain.cargo(workspace);
    cmd.args(["build", "--target", target]);
    configure(toolchain, &mut cmd, target, target_dir)?;
    for claim in claimed {
        cmd.args(["--package", &claim.package]);
        // Cargo does not relink when only linker inputs (the CRT shim, import libraries)
        // changed: mark each program's root as modified (mtime only), as `targets::link` does.
        for (_, src) in &claim.bins {
            touch(src)?;
        }
    }
    run(&mut cmd)?;
    let dir = target_dir.join(target).join("debug");
    let mut programs = Vec::new();
    for claim in claimed {
        for (bin, _) in &claim.bins {
            let exe = dir.join(format!("{bin}.exe"));
            let image =
                PeImage::parse(&fs::read(&exe).with_context(|| exe.display().to_string())?)?;
            eprintln!("{}: {}", exe.display(), pe::summary(&image));
            let gui = claim.gui.contains(bin);
            let rules = if gui { &GUI_EXE_RULES } else { &EXE_RULES };
            pe::check_executable(&image, rules).with_context(|| exe.display().to_string())?;
            programs.push(format!("{bin}.exe{}", if gui { " (GUI)" } else { "" }));
        }
    }
    let crates: Vec<&str> = claimed.iter().map(|c| c.package.as_str()).collect();
    Ok(format!(
        "{} linked ({})",
        if programs.is_empty() {
            "no program".into()
        } else {
            programs.join(" ")
        },
        crates.join(", ")
    ))
}

pub const EXE_RULES: ExeRules<'static> = ExeRules {
    subsystem: SUBSYSTEM_CONSOLE,
    allowed_imports: SYSTEM_DLLS,
};

/// A program started at logon without a console window (`windows_subsystem = "windows"`).
pub const GUI_EXE_RULES: ExeRules<'static> = ExeRules {
    subsystem: SUBSYSTEM_GUI,
    allowed_imports: SYSTEM_DLLS,
};

/// The target dir of std builds for `target`, shared by the root workspace's programs, the
/// installer and (gnu) the wine tests: one panic = abort std for msvc, one unwind std for gnu.
pub fn build_target_dir(target: &str) -> PathBuf {
    units_target_dir(target, true, Units::Build)
}

/// Adds the per-target std, linker and target dir to a cargo command.
pub fn configure(
    toolchain: &Toolchain,
    cmd: &mut Command,
    target: &str,
    target_dir: &Path,
) -> Result<()> {
    if target == MSVC {
        toolchain.verify(&["lld-link", "llvm-lib"])?;
        cmd.args(BUILD_STD)
            .args(target_config(
                MSVC,
                "linker",
                &toolchain.llvm("lld-link").display().to_string(),
            ))
            // lld-link searches `LIB` like link.exe does: no -L in RUSTFLAGS, so the std build
            // stays shared with every other msvc std build.
            .env("LIB", msvc_libs(toolchain)?);
    } else {
        toolchain.verify(&[])?;
        ensure!(
            which(MINGW_GCC),
            "{MINGW_GCC} is missing: install gcc-mingw-w64-x86-64 (`cargo xtask cross-check deps`)"
        );
        // Plain -Zbuild-std: panic = unwind, which `cargo test` needs, so the programs and the
        // wine tests share one std build.
        cmd.arg("-Zbuild-std")
            .args(target_config(GNU, "linker", MINGW_GCC));
    }
    cmd.arg("--target-dir").arg(target_dir);
    Ok(())
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/bin")])
        .any(|dir| dir.join(program).exists())
}

fn touch(path: &Path) -> Result<()> {
    fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(SystemTime::now()))
        .with_context(|| format!("touching {}", path.display()))
}

const CRT_SHIM: &str = include_str!("../../../shims/msvc-crt.c");

/// The `LIB` directory for msvc links: every mingw-w64 import library `lib<name>.a` as
/// `<name>.lib` (what rustc and `#[link]` ask for), and `msvcrt.lib` built from the CRT shim.
/// Rebuilt when the shim's source or the generated math thunks change.
fn msvc_libs(toolchain: &Toolchain) -> Result<PathBuf> {
    let dir = cache_root().join("windows-msvc-libs");
    let thunks = math_thunks(toolchain)?;
    let thunk_asm = thunk_assembly(&thunks);
    // The stamp holds both generated inputs: a change to either rebuilds the directory.
    let stamp = dir.join("inputs.stamp");
    let inputs = format!("{CRT_SHIM}\n{thunk_asm}");
    if fs::read_to_string(&stamp).ok().as_deref() == Some(inputs.as_str()) {
        return Ok(dir);
    }
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    let mut linked = 0;
    for entry in fs::read_dir(MINGW_LIB)
        .with_context(|| format!("{MINGW_LIB}: install mingw-w64-x86-64-dev"))?
    {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(stem) = name.strip_prefix("lib").and_then(|n| n.strip_suffix(".a")) else {
            continue;
        };
        // msvcrt is the shim below; mingw's libmsvcrt.a is the mingw CRT, not MSVC's.
        if stem == "msvcrt" || stem.contains(".dll") {
            continue;
        }
        std::os::unix::fs::symlink(&path, dir.join(format!("{stem}.lib")))?;
        linked += 1;
    }
    ensure!(linked > 0, "no import libraries in {MINGW_LIB}");
    let source = dir.join("msvc-crt.src.c");
    let object = dir.join("msvc-crt.obj");
    fs::write(&source, CRT_SHIM)?;
    let thunk_source = dir.join("ucrt-math-thunks.s");
    let thunk_object = dir.join("ucrt-math-thunks.obj");
    fs::write(&thunk_source, &thunk_asm)?;
    for (src, obj) in [(&source, &object), (&thunk_source, &thunk_object)] {
        run(Command::new("clang")
            .args([
                "--target=x86_64-pc-windows-msvc",
                "-O2",
                "-fno-builtin",
                "-c",
            ])
            .arg(src)
            .arg("-o")
            .arg(obj))?;
    }
    run(Command::new(toolchain.llvm("llvm-lib"))
        .arg(format!("/out:{}", dir.join("msvcrt.lib").display()))
        .arg(&object)
        .arg(&thunk_object))?;
    fs::write(&stamp, inputs)?;
    eprintln!(
        "{}: {linked} mingw import libraries + msvcrt.lib (shim, {} math thunks)",
        dir.display(),
        thunks.len()
    );
    Ok(dir)
}

/// Functions of the UCRT's math API set that mingw-w64's libucrt.a imports only as
/// `__imp_<name>` (no callable `<name>`), from `llvm-nm -A` of the library.
fn math_thunks(toolchain: &Toolchain) -> Result<Vec<String>> {
    let out = Command::new(toolchain.llvm("llvm-nm"))
        .arg("-A")
        .arg(Path::new(MINGW_LIB).join("libucrt.a"))
        .output()
        .context("running llvm-nm")?;
    ensure!(out.status.success(), "llvm-nm of libucrt.a failed");
    Ok(imported_only(
        &String::from_utf8_lossy(&out.stdout),
        "api-ms-win-crt-math-",
    ))
}

/// From `llvm-nm -A` lines (`lib.a:member.o: 00000000 I __imp_sinf`): names imported by
/// members whose name starts with `lib<dll_prefix>` with no text symbol of the same name in
/// the whole archive. Names starting with `_` (data such as `_HUGE`, internals) are left out.
pub fn imported_only(nm: &str, dll_prefix: &str) -> Vec<String> {
    let mut imported = std::collections::BTreeSet::new();
    let mut defined = std::collections::BTreeSet::new();
    for line in nm.lines() {
        let mut fields = line.rsplitn(3, ' ');
        let (Some(name), Some(kind), Some(rest)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let member = rest.split(':').nth(1).unwrap_or_default();
        match kind {
            "I" if member.starts_with(&format!("lib{dll_prefix}")) => {
                if let Some(function) = name.strip_prefix("__imp_") {
                    if !function.starts_with('_') {
                        imported.insert(function.to_owned());
                    }
                }
            }
            "T" => {
                defined.insert(name.to_owned());
            }
            _ => {}
        }
    }
    imported.difference(&defined).cloned().collect()
}

/// `name: jmp *__imp_name(%rip)` for each name: a direct call lands in the DLL's function.
pub fn thunk_assembly(names: &[String]) -> String {
    let mut out =
        String::from("# Generated by `cargo xtask cross-check windows` (user.rs).\n    .text\n");
    for name in names {
        out.push_str(&format!(
            "    .globl {name}\n    .p2align 4\n{name}:\n    jmp *__imp_{name}(%rip)\n"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(name: &str, windows: Value, targets: Value) -> Value {
        serde_json::json!({ "name": name, "metadata": { "hardmute": { "windows": windows } }, "targets": targets })
    }

    #[test]
    fn claims_list_programs_and_wine_tests() {
        let meta = serde_json::json!({ "packages": [
            package("hardmuted", serde_json::json!({ "wine-tests": ["test:ipc", "lib"], "gui-programs": ["hardmuted"] }), serde_json::json!([
                { "name": "hardmuted", "kind": ["lib"], "src_path": "/r/src/lib.rs" },
                { "name": "hardmuted", "kind": ["bin"], "src_path": "/r/src/main.rs" },
                { "name": "ipc", "kind": ["test"], "src_path": "/r/tests/ipc.rs" }
            ])),
            package("hardmute-ipc", serde_json::json!({}), serde_json::json!([
                { "name": "hardmute_ipc", "kind": ["lib"], "src_path": "/i/src/lib.rs" }
            ])),
            { "name": "hardmute-backend-linux", "metadata": null, "targets": [] }
        ]});
        let got = claims(&meta).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].package, "hardmuted");
        assert_eq!(
            got[0].bins,
            [("hardmuted".to_owned(), PathBuf::from("/r/src/main.rs"))]
        );
        assert_eq!(
            got[0].wine_tests,
            [TestTarget::Test("ipc".into()), TestTarget::Lib]
        );
        assert!(got[1].bins.is_empty() && got[1].wine_tests.is_empty());
        assert_eq!(got[0].gui, ["hardmuted"]);
        assert!(got[1].gui.is_empty());
        assert_eq!(got[0].wine_tests[0].cargo_args(), ["--test", "ipc"]);
    }

    #[test]
    fn only_math_functions_without_code_get_thunks() {
        let nm = "\
/m/libucrt.a:libapi-ms-win-crt-math-l1-1-0s00270.o: 00000000 I __imp_sinf
/m/libucrt.a:libapi-ms-win-crt-math-l1-1-0s00101.o: 00000000 I __imp_fma
/m/libucrt.a:libapi-ms-win-crt-math-l1-1-0s00101.o: 00000000 T fma
/m/libucrt.a:libapi-ms-win-crt-math-l1-1-0s00002.o: 00000000 I __imp__HUGE
/m/libucrt.a:libapi-ms-win-crt-string-l1-1-0s00128.o: 00000000 I __imp_strlen
/m/libucrt.a:libapi-ms-win-crt-math-l1-1-0s00185.o: 00000000 I __imp_floor
/m/libucrt.a:libapi-ms-win-crt-math-l1-1-0s00185.o:          U _head_lib64_libapi_ms_win_crt_math_l1_1_0_a
";
        let names = imported_only(nm, "api-ms-win-crt-math-");
        assert_eq!(names, ["floor", "sinf"]);
        let asm = thunk_assembly(&names);
        assert!(
            asm.contains("floor:\n    jmp *__imp_floor(%rip)\n"),
            "{asm}"
        );
        assert_eq!(asm.matches(".globl").count(), 2);
    }

    #[test]
    fn typos_in_the_claim_fail() {
        for bad in [
            serde_json::json!({ "gui-programs": ["not-a-program"] }),
            serde_json::json!({ "gui-programs": "hardmuted" }),
            serde_json::json!({ "wine-test": ["lib"] }),
            serde_json::json!({ "wine-tests": ["tests:ipc"] }),
            serde_json::json!({ "wine-tests": "lib" }),
            serde_json::json!(["lib"]),
        ] {
            let meta = serde_json::json!({ "packages": [package("x", bad.clone(), serde_json::json!([]))] });
            assert!(claims(&meta).is_err(), "{bad} accepted");
        }
    }
}
