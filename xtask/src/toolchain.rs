//! The cross-check toolchain: Debian's `rustc-web` (1.96, ships `rust-src`, so `-Zbuild-std` works
//! through `RUSTC_BOOTSTRAP=1`), LLVM 22's linkers and binutils, and the per-target build caches.
//!
//! Rustup's toolchain that runs `cargo xtask` has no Windows/macOS std and no `rust-src`, so every
//! cross build goes through [`Toolchain::cargo`], which calls `/usr/bin/cargo` with an environment
//! scrubbed of everything the outer (rustup) cargo or the user may have set.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use anyhow::{bail, Context, Result};

/// Overrides the cache root (default `$HOME/.cache/hardmute-xcheck`).
pub const CACHE_ENV: &str = "HARDMUTE_XCHECK_CACHE";

/// Where the Debian toolchain and LLVM live. Fields are public so tests and later stages can
/// point at another installation.
#[derive(Debug, Clone)]
pub struct Toolchain {
    pub cargo: PathBuf,
    pub rustc: PathBuf,
    pub rustdoc: PathBuf,
    /// Standard-library sources `-Zbuild-std` compiles (from `rust-web-src`).
    pub rust_src: PathBuf,
    /// `/usr/lib/llvm-22/bin`: unsuffixed tool names (`ld64.lld`, `lld-link`, `llvm-lipo`), so
    /// rustc infers the right linker flavour from the file name.
    pub llvm_bin: PathBuf,
}

impl Default for Toolchain {
    fn default() -> Self {
        Self::debian()
    }
}

impl Toolchain {
    pub fn debian() -> Self {
        Toolchain {
            cargo: PathBuf::from("/usr/bin/cargo"),
            rustc: PathBuf::from("/usr/bin/rustc"),
            rustdoc: PathBuf::from("/usr/bin/rustdoc"),
            rust_src: PathBuf::from("/usr/lib/rustlib/src/rust/library"),
            llvm_bin: PathBuf::from("/usr/lib/llvm-22/bin"),
        }
    }

    /// Path of an LLVM 22 tool (`ld64.lld`, `lld-link`, `llvm-lipo`, ...).
    pub fn llvm(&self, tool: &str) -> PathBuf {
        self.llvm_bin.join(tool)
    }

    /// Fails with a hint to run `deps` when a required piece is missing.
    pub fn verify(&self, llvm_tools: &[&str]) -> Result<()> {
        let mut missing: Vec<PathBuf> = vec![
            self.cargo.clone(),
            self.rustc.clone(),
            self.rust_src.join("core/src/lib.rs"),
        ];
        missing.extend(llvm_tools.iter().map(|t| self.llvm(t)));
        missing.retain(|p| !p.exists());
        if !missing.is_empty() {
            bail!(
                "cross-check toolchain incomplete, missing: {}\n  run `cargo xtask cross-check deps` (as root) first",
                missing
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Ok(())
    }

    /// `/usr/bin/cargo` with `RUSTC_BOOTSTRAP=1`, Debian's rustc, and no inherited build settings.
    pub fn cargo(&self, dir: &Path) -> Command {
        let mut cmd = Command::new(&self.cargo);
        cmd.current_dir(dir);
        for (key, _) in std::env::vars_os() {
            if let Some(key) = key.to_str() {
                if is_inherited_build_setting(key) {
                    cmd.env_remove(key);
                }
            }
        }
        cmd.env("CARGO", &self.cargo)
            .env("RUSTC", &self.rustc)
            .env("RUSTDOC", &self.rustdoc)
            .env("RUSTC_BOOTSTRAP", "1")
            .env("PATH", path_with_usr_bin_first());
        cmd
    }
}

/// Environment variables that would change what `/usr/bin/cargo` builds or with which compiler:
/// rustup's toolchain pin, wrappers, flags, target/profile overrides, and the variables the outer
/// `cargo run` sets for the xtask itself.
pub fn is_inherited_build_setting(key: &str) -> bool {
    const EXACT: &[&str] = &[
        "RUSTUP_TOOLCHAIN",
        "RUSTC",
        "RUSTDOC",
        "RUSTFLAGS",
        "RUSTDOCFLAGS",
        "CARGO",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_RUSTC_CURRENT_DIR",
        "MAKEFLAGS",
        "MFLAGS",
        "CARGO_MAKEFLAGS",
        "SDKROOT",
        "MACOSX_DEPLOYMENT_TARGET",
    ];
    const PREFIXES: &[&str] = &[
        "RUSTC_", // RUSTC_WRAPPER, RUSTC_WORKSPACE_WRAPPER, RUSTC_BOOTSTRAP (set again below)
        "CARGO_ENCODED_",
        "CARGO_BUILD_",
        "CARGO_TARGET_",
        "CARGO_PROFILE_",
        "CARGO_PKG_",
        "CARGO_MANIFEST_",
        "CARGO_CRATE_",
        "CARGO_BIN_",
        "CARGO_CFG_",
        "CARGO_UNSTABLE_",
    ];
    EXACT.contains(&key) || PREFIXES.iter().any(|p| key.starts_with(p))
}

/// `/usr/bin` first so that any `rustc`/`cargo` a build script spawns is Debian's, not rustup's.
fn path_with_usr_bin_first() -> OsString {
    let mut parts = vec![PathBuf::from("/usr/bin")];
    if let Some(path) = std::env::var_os("PATH") {
        parts.extend(std::env::split_paths(&path).filter(|p| p != Path::new("/usr/bin")));
    }
    std::env::join_paths(parts).unwrap_or_else(|_| OsString::from("/usr/bin:/bin"))
}

/// Root of everything the rig caches between runs (std builds dominate the cold time, and CI
/// runs on a fresh clone, so the cache lives outside the repository).
pub fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os(CACHE_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| OsString::from("/tmp"));
    PathBuf::from(home).join(".cache/hardmute-xcheck")
}

/// One cargo target dir per target triple, shared by every stage. Stages keep the same
/// RUSTFLAGS (none) and pass link settings to the final crate only (`cargo rustc -- ...`), so
/// the std/core builds in here are reused rather than rebuilt between stages.
pub fn target_dir(target: &str) -> PathBuf {
    cache_root().join("target").join(target)
}

/// The repository root (the workspace this xtask belongs to). `cargo run` (the `cargo xtask`
/// alias) sets CARGO_MANIFEST_DIR for the process; that is preferred over the compile-time value
/// because cargo does not rebuild a path crate whose checkout moved (a CI clone at another path
/// sharing the target cache would otherwise work on the old checkout).
pub fn repo_root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .filter(|dir| dir.join("Cargo.toml").is_file())
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// Prints the command, runs it, and fails loudly with its exit status.
pub fn run(cmd: &mut Command) -> Result<()> {
    let status = status_of(cmd)?;
    if !status.success() {
        bail!("command failed ({status}): {}", describe(cmd));
    }
    Ok(())
}

/// Prints and runs the command, returning its status (for callers that expect failure).
pub fn status_of(cmd: &mut Command) -> Result<ExitStatus> {
    eprintln!("+ {}", describe(cmd));
    cmd.status()
        .with_context(|| format!("cannot start {}", describe(cmd)))
}

/// `program arg arg` for logs, with the env vars this rig sets that matter for reproducing it.
pub fn describe(cmd: &Command) -> String {
    let mut out = String::new();
    for (key, value) in cmd.get_envs() {
        if let (Some(value), Some(key)) = (value, key.to_str()) {
            if key == "SDKROOT" || key == "RUSTC_BOOTSTRAP" {
                out.push_str(&format!("{key}={} ", value.to_string_lossy()));
            }
        }
    }
    out.push_str(&cmd.get_program().to_string_lossy());
    for arg in cmd.get_args() {
        out.push(' ');
        out.push_str(&arg.to_string_lossy());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outer_cargo_and_rustup_settings_are_not_inherited() {
        for key in [
            "RUSTUP_TOOLCHAIN",
            "RUSTC_WRAPPER",
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "CARGO_TARGET_DIR",
            "CARGO_TARGET_AARCH64_APPLE_DARWIN_LINKER",
            "CARGO_BUILD_TARGET",
            "CARGO_PROFILE_DEV_PANIC",
            "CARGO_MANIFEST_DIR",
            "SDKROOT",
        ] {
            assert!(is_inherited_build_setting(key), "{key} must be scrubbed");
        }
        for key in [
            "CARGO_HOME",
            "HOME",
            "PATH",
            "CARGO_NET_OFFLINE",
            "CARGO_TERM_COLOR",
        ] {
            assert!(!is_inherited_build_setting(key), "{key} must be kept");
        }
    }

    #[test]
    fn cargo_command_uses_debian_compiler_and_bootstrap() {
        let tc = Toolchain::debian();
        let cmd = tc.cargo(Path::new("/"));
        let env: std::collections::HashMap<_, _> = cmd
            .get_envs()
            .filter_map(|(k, v)| Some((k.to_str()?.to_owned(), v?.to_str()?.to_owned())))
            .collect();
        assert_eq!(cmd.get_program(), "/usr/bin/cargo");
        assert_eq!(env.get("RUSTC").map(String::as_str), Some("/usr/bin/rustc"));
        assert_eq!(env.get("RUSTC_BOOTSTRAP").map(String::as_str), Some("1"));
        assert!(env["PATH"].starts_with("/usr/bin:") || env["PATH"] == "/usr/bin");
    }

    #[test]
    fn target_dirs_are_per_target_under_the_cache() {
        let a = target_dir("aarch64-apple-darwin");
        let b = target_dir("x86_64-pc-windows-msvc");
        assert_ne!(a, b);
        assert!(a.starts_with(cache_root()) && a.ends_with("target/aarch64-apple-darwin"));
    }

    #[test]
    fn repo_root_is_the_workspace() {
        let manifest = std::fs::read_to_string(repo_root().join("Cargo.toml")).unwrap();
        assert!(manifest.contains("[workspace]"));
    }
}
