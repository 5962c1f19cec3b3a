//! Stages `windows` and `windows-wine`: the shipped Windows code, built and linked on Linux
//! with Debian's rustc, lld-link 22 and mingw-w64, and asserted on.
//!
//! - [`driver`]: the WaveRT kernel driver (`driver/windows/kernel`, its own workspace) linked as a WDM
//!   `.sys` in dev and release, PE rules incl. stack frames from the unwind data, the GUID
//!   cross-check against the DDK headers, clippy.
//! - [`user`]: every crate with `[package.metadata.hardmute.windows]` built and linked for
//!   x86_64-pc-windows-msvc (lld-link, the `msvc-crt.c` shim) and x86_64-pc-windows-gnu
//!   (mingw gcc); each program is a console PE32+ importing only DLLs Windows ships.
//! - [`installer`]: `installer/windows` (its own workspace) linked for msvc and clippy-clean.
//! - [`wine`] (stage `windows-wine`): the test targets those crates list, run under headless
//!   wine as the cargo runner (x86_64-pc-windows-gnu, panic = unwind).
//! - [`kernel`] (stage `windows-kernel`): the release `.sys` loaded by Wine's kernel layer
//!   with a stand-in `portcls.sys`, driven through its control device by a test program.
//! - [`msi`] (stage `windows-msi`): the user-space MSI built by wixl from the msvc programs,
//!   its tables, summary and cabinet asserted.

pub mod driver;
pub mod installer;
pub mod kernel;
pub mod msi;
pub mod user;
pub mod wine;

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::report::Report;
use crate::toolchain::{cache_root, Toolchain};

pub const MSVC: &str = "x86_64-pc-windows-msvc";
pub const GNU: &str = "x86_64-pc-windows-gnu";

/// mingw-w64's C compiler: the linker for the gnu target and the compiler of the wine shim.
pub const MINGW_GCC: &str = "x86_64-w64-mingw32-gcc";
/// mingw-w64's import libraries (kernel32, ntdll, ucrt, ...), used for the msvc link too.
pub const MINGW_LIB: &str = "/usr/x86_64-w64-mingw32/lib";

/// DLLs a user-mode program may import: all ship with Windows 10/11 (the UCRT's
/// `api-ms-win-crt-*` API sets and bcryptprimitives.dll included). The VC++ runtime
/// (`vcruntime140.dll`) and mingw's `libgcc_s`/`libwinpthread` are not system DLLs.
pub const SYSTEM_DLLS: &[&str] = &[
    "kernel32.dll",
    "ntdll.dll",
    "advapi32.dll",
    "userenv.dll",
    "ws2_32.dll",
    "bcrypt.dll",
    "bcryptprimitives.dll",
    "dbghelp.dll",
    "ole32.dll",
    "oleaut32.dll",
    "combase.dll",
    "propsys.dll",
    "rpcrt4.dll",
    "user32.dll",
    "shell32.dll",
    "avrt.dll",
    "mmdevapi.dll",
    "setupapi.dll",
    "newdev.dll",
    "cfgmgr32.dll",
    "msvcrt.dll",
    "ucrtbase.dll",
    "api-ms-win-*",
];

pub fn run_stage(toolchain: &Toolchain, report: &mut Report) {
    driver::run_rows(toolchain, report);
    user::run_rows(toolchain, report);
    installer::run_rows(toolchain, report);
}

pub fn run_wine_stage(toolchain: &Toolchain, report: &mut Report) {
    wine::run_rows(toolchain, report);
}

pub fn run_kernel_stage(toolchain: &Toolchain, report: &mut Report) {
    kernel::run_rows(toolchain, report);
}

pub fn run_msi_stage(toolchain: &Toolchain, report: &mut Report) {
    msi::run_rows(toolchain, report);
}

/// How a target dir's std/core units are built: `cargo build`/`test` or `cargo check`/`clippy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Units {
    Build,
    Check,
}

/// Target dir for `target` in the cache, apart from the per-triple dir of the core-only builds
/// (`toolchain::target_dir`) except for the driver's build, which shares that one.
///
/// Measured with Debian's cargo 1.96 on x86_64-pc-windows-msvc: `-Zbuild-std` gives `core`
/// (and the rest of std) the same output files in `cargo check` and `cargo build`, and in the
/// core-only and std builds, so one dir for all of them rebuilt std or core on every warm run
/// (minutes). One dir per kind of std unit keeps warm runs warm.
pub fn units_target_dir(target: &str, std: bool, units: Units) -> PathBuf {
    let kind = match (std, units) {
        (true, Units::Build) => "std",
        (true, Units::Check) => "std-check",
        (false, Units::Build) => return crate::toolchain::target_dir(target),
        (false, Units::Check) => "core-check",
    };
    cache_root().join("target").join(format!("{target}-{kind}"))
}

/// `cargo clippy` is Debian's `rust-web-clippy`: say so instead of "no such command".
fn verify_clippy(toolchain: &Toolchain) -> Result<()> {
    let clippy = toolchain
        .cargo
        .parent()
        .unwrap_or(Path::new("/usr/bin"))
        .join("cargo-clippy");
    if !clippy.exists() {
        bail!(
            "{} is missing: install rust-web-clippy (`cargo xtask cross-check deps`)",
            clippy.display()
        );
    }
    Ok(())
}

/// `--config target.<triple>.<key>="<value>"`: per-invocation, never a committed config file
/// (that would break native Windows builds).
fn target_config(target: &str, key: &str, value: &str) -> [String; 2] {
    [
        "--config".into(),
        format!("target.{target}.{key}={value:?}"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_std_unit_gets_its_own_dir_and_the_driver_shares_the_core_one() {
        let dirs = [
            units_target_dir(MSVC, false, Units::Build),
            units_target_dir(MSVC, false, Units::Check),
            units_target_dir(MSVC, true, Units::Build),
            units_target_dir(MSVC, true, Units::Check),
            units_target_dir(GNU, true, Units::Build),
        ];
        for (i, a) in dirs.iter().enumerate() {
            assert!(a.starts_with(cache_root()), "{}", a.display());
            for b in &dirs[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(dirs[0], crate::toolchain::target_dir(MSVC));
    }

    #[test]
    fn linker_settings_are_per_invocation_config_values() {
        assert_eq!(
            target_config(MSVC, "linker", "/usr/lib/llvm-22/bin/lld-link"),
            [
                "--config".to_owned(),
                "target.x86_64-pc-windows-msvc.linker=\"/usr/lib/llvm-22/bin/lld-link\"".to_owned()
            ]
        );
    }
}
