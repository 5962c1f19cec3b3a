//! `cross-check deps`: installs what the rig needs on a fresh Debian 12 machine (as root).
//! Idempotent and quick when everything is there: one `dpkg-query` and one file test.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::toolchain::{run, Toolchain};

/// Debian packages, and why each is needed.
pub const APT_PACKAGES: &[(&str, &str)] = &[
    (
        "rustc-web",
        "rustc 1.96 that can build std for other targets",
    ),
    ("cargo-web", "/usr/bin/cargo matching rustc-web"),
    ("rust-web-src", "std sources for -Zbuild-std"),
    (
        "rust-web-clippy",
        "cargo clippy of the Windows driver and installer for their targets",
    ),
    ("lld-22", "ld64.lld (Mach-O) and lld-link (PE)"),
    (
        "llvm-22",
        "llvm-lipo, llvm-readobj, llvm-objdump, llvm-lib, llvm-dlltool",
    ),
    (
        "clang",
        "C objects for the inspection tests and the Windows C shims",
    ),
    (
        "libclang-dev",
        "bindgen (Windows kernel bindings, later stages)",
    ),
    (
        "gcc-mingw-w64-x86-64",
        "linker for x86_64-pc-windows-gnu and the wine bcryptprimitives shim",
    ),
    (
        "mingw-w64-x86-64-dev",
        "DDK headers (GUID check) and import libraries for the msvc userspace link",
    ),
    ("wine64", "runs the Windows userspace tests (windows-wine)"),
    (
        "wixl",
        "builds the user-space MSI from installer/windows/wix (windows-msi)",
    ),
    (
        "msitools",
        "msiinfo/msibuild/msiextract: fix up and read back the MSI (windows-msi)",
    ),
    (
        "python3-pip",
        "downloads the ziglang wheel for libSystem.tbd",
    ),
    ("unzip", "extracts libSystem.tbd from the wheel"),
    ("file", "human-readable file types in logs"),
];

/// The Zig release whose libSystem.tbd the stub SDK uses (pinned: the symbol list is an input).
pub const ZIGLANG_VERSION: &str = "0.15.2";
const LIBSYSTEM_IN_WHEEL: &str = "ziglang/lib/libc/darwin/libSystem.tbd";

pub fn install(toolchain: &Toolchain) -> Result<()> {
    let missing = missing_packages()?;
    if missing.is_empty() {
        eprintln!("apt: all {} packages present", APT_PACKAGES.len());
    } else {
        eprintln!("apt: installing {}", missing.join(" "));
        if !is_root() {
            bail!(
                "not root: run as root, or install by hand:\n  apt-get install -y --no-install-recommends {}",
                missing.join(" ")
            );
        }
        run(Command::new("apt-get").args(["update", "-qq"]))?;
        run(Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing))?;
        let still = missing_packages()?;
        if !still.is_empty() {
            bail!(
                "apt-get finished but these are still missing: {}",
                still.join(" ")
            );
        }
    }
    fetch_libsystem_tbd()?;
    toolchain.verify(&["ld64.lld", "lld-link", "llvm-lipo", "llvm-readobj"])?;
    eprintln!("deps: ready");
    Ok(())
}

/// Packages from [`APT_PACKAGES`] that are not installed.
pub fn missing_packages() -> Result<Vec<String>> {
    let names: Vec<&str> = APT_PACKAGES.iter().map(|(name, _)| *name).collect();
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Package} ${db:Status-Abbrev}\n"])
        .args(&names)
        .output()
        .context("running dpkg-query (is this Debian?)")?;
    // dpkg-query exits 1 when some package is unknown; its stdout still lists the known ones.
    Ok(packages_not_installed(
        &names,
        &String::from_utf8_lossy(&out.stdout),
    ))
}

/// `dpkg-query -W -f='${Package} ${db:Status-Abbrev}'` output -> wanted names not in state "ii".
pub fn packages_not_installed(wanted: &[&str], dpkg_output: &str) -> Vec<String> {
    let installed: Vec<&str> = dpkg_output
        .lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let name = parts.next()?;
            (parts.next()? == "ii").then_some(name)
        })
        .collect();
    wanted
        .iter()
        .filter(|name| !installed.contains(name))
        .map(|name| name.to_string())
        .collect()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Zig's libSystem.tbd (the real export list of macOS's libSystem) from the PyPI wheel.
fn fetch_libsystem_tbd() -> Result<()> {
    let dest = crate::macos_sdk::libsystem_tbd_path();
    if dest.exists() {
        eprintln!("libSystem.tbd: present ({})", dest.display());
        return Ok(());
    }
    let dir = dest.parent().context("libSystem path has a parent")?;
    let download = dir.join("download");
    std::fs::create_dir_all(&download)?;
    run(Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--quiet",
            "-d",
        ])
        .arg(&download)
        .arg(format!("ziglang=={ZIGLANG_VERSION}")))?;
    let wheel = std::fs::read_dir(&download)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .context("pip downloaded no ziglang wheel")?;
    run(Command::new("unzip")
        .args(["-o", "-q", "-j"])
        .arg(&wheel)
        .arg(LIBSYSTEM_IN_WHEEL)
        .arg("-d")
        .arg(dir))?;
    std::fs::remove_dir_all(&download)?;
    check_libsystem(&dest)?;
    eprintln!("libSystem.tbd: fetched ({})", dest.display());
    Ok(())
}

fn check_libsystem(path: &Path) -> Result<()> {
    let text = std::fs::read_to_string(path)?;
    if !text.contains("install-name:") || !text.contains("'/usr/lib/libSystem.B.dylib'") {
        std::fs::remove_file(path)?;
        bail!("{} is not libSystem's text stub", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpkg_states_other_than_ii_count_as_missing() {
        let out = "clang ii \nwine64 rc \nlld-22 un \n";
        let got = packages_not_installed(&["clang", "wine64", "lld-22", "unzip"], out);
        assert_eq!(got, ["wine64", "lld-22", "unzip"]);
    }

    #[test]
    fn the_linkers_and_std_sources_are_in_the_package_list() {
        let names: Vec<&str> = APT_PACKAGES.iter().map(|(n, _)| *n).collect();
        for needed in [
            "rustc-web",
            "cargo-web",
            "rust-web-src",
            "lld-22",
            "llvm-22",
            "rust-web-clippy",
            "gcc-mingw-w64-x86-64",
            "wine64",
            "wixl",
            "msitools",
        ] {
            assert!(names.contains(&needed), "{needed}");
        }
    }
}
