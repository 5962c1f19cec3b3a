//! One module per cross-check stage, plus the link step they share.

pub mod core;
pub mod crates;
pub mod macos;
pub mod macos_run;
pub mod selftest;
pub mod windows;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{ensure, Context, Result};

use crate::toolchain::{run, target_dir, Toolchain};

/// What `cargo rustc` builds and links for a [`RustcLink`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product<'a> {
    /// The package's library, linked as its cdylib (`lib<name>.dylib` / `<name>.dll`).
    Lib,
    /// One example program (`examples/<name>[.exe]`).
    Example(&'a str),
    /// One `[[bin]]` program (`<name>[.exe]`).
    Bin(&'a str),
}

/// One final crate linked with `cargo rustc`, so `link_args` reach that crate only.
#[derive(Debug, Clone)]
pub struct RustcLink<'a> {
    /// Where cargo runs (the workspace holding `package`).
    pub workspace: &'a Path,
    /// The final crate's root file, marked modified so cargo relinks (see [`link`]).
    pub final_src: &'a Path,
    pub package: &'a str,
    pub product: Product<'a>,
    pub target: &'a str,
    /// `-Zbuild-std=...` and the `--config` profile settings every build of this target shares.
    pub build_std: &'a [&'a str],
    pub sdkroot: Option<&'a Path>,
    pub link_args: &'a [String],
    /// `--release` (output below `<target>/release`) instead of the dev profile.
    pub release: bool,
}

/// Builds and links one final crate with `cargo rustc`, so `link_args` reach the final crate
/// only: the cached std/core builds in the per-target dir are shared with every other stage (their
/// flags never change). Returns the linked file.
///
/// Cargo does not relink when only the SDK stubs or linker inputs changed, so `final_src` (the
/// final crate's root file) is marked as modified first: the link always uses current inputs,
/// and re-compiling that one crate costs a second or two.
pub fn link(toolchain: &Toolchain, job: &RustcLink<'_>) -> Result<PathBuf> {
    fs::File::options()
        .write(true)
        .open(job.final_src)
        .and_then(|f| f.set_modified(SystemTime::now()))
        .with_context(|| format!("touching {}", job.final_src.display()))?;
    let dir = target_dir(job.target);
    let mut cmd = toolchain.cargo(job.workspace);
    cmd.args(["rustc", "--package", job.package]);
    match job.product {
        Product::Lib => cmd.arg("--lib"),
        Product::Example(name) => cmd.args(["--example", name]),
        Product::Bin(name) => cmd.args(["--bin", name]),
    };
    if job.release {
        cmd.arg("--release");
    }
    cmd.args(["--target", job.target])
        .args(job.build_std)
        .arg("--target-dir")
        .arg(&dir)
        .arg("--")
        .args(job.link_args);
    if let Some(sdk) = job.sdkroot {
        cmd.env("SDKROOT", sdk);
    }
    run(&mut cmd)?;
    let out = dir
        .join(job.target)
        .join(if job.release { "release" } else { "debug" })
        .join(output_file(job.package, job.product, job.target));
    ensure!(
        out.exists(),
        "link succeeded but {} is missing",
        out.display()
    );
    Ok(out)
}

/// The linked file's path below `<target-dir>/<target>/debug`.
fn output_file(package: &str, product: Product<'_>, target: &str) -> PathBuf {
    let apple = target.contains("apple");
    match product {
        Product::Lib => {
            let stem = package.replace('-', "_");
            PathBuf::from(if apple {
                format!("lib{stem}.dylib")
            } else {
                format!("{stem}.dll")
            })
        }
        Product::Example(name) => Path::new("examples").join(if apple {
            name.to_owned()
        } else {
            format!("{name}.exe")
        }),
        Product::Bin(name) => PathBuf::from(if apple {
            name.to_owned()
        } else {
            format!("{name}.exe")
        }),
    }
}

/// [`link`] for a package's cdylib (the shape every stage before `macos` needed).
#[allow(clippy::too_many_arguments)]
pub fn link_cdylib(
    toolchain: &Toolchain,
    workspace: &Path,
    final_src: &Path,
    package: &str,
    target: &str,
    build_std: &[&str],
    sdkroot: Option<&Path>,
    link_args: &[String],
) -> Result<PathBuf> {
    link(
        toolchain,
        &RustcLink {
            workspace,
            final_src,
            package,
            product: Product::Lib,
            target,
            build_std,
            sdkroot,
            link_args,
            release: false,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linked_file_names_follow_rustc_per_target() {
        let mac = "aarch64-apple-darwin";
        let win = "x86_64-pc-windows-msvc";
        assert_eq!(
            output_file("hardmute-macos-plugin", Product::Lib, mac),
            Path::new("libhardmute_macos_plugin.dylib")
        );
        assert_eq!(
            output_file("hardmute-selftest-dll", Product::Lib, win),
            Path::new("hardmute_selftest_dll.dll")
        );
        assert_eq!(
            output_file("x", Product::Example("bridge_probe"), mac),
            Path::new("examples/bridge_probe")
        );
        assert_eq!(
            output_file("x", Product::Example("probe"), win),
            Path::new("examples/probe.exe")
        );
        assert_eq!(
            output_file("hardmuted", Product::Bin("hardmuted"), mac),
            Path::new("hardmuted")
        );
        assert_eq!(
            output_file("hardmuted", Product::Bin("hardmuted"), win),
            Path::new("hardmuted.exe")
        );
    }
}
