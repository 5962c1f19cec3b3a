//! `windows-driver`: the WaveRT kernel driver `hardmute-windows-kernel` (driver/windows/kernel, its own
//! workspace) with the rig's core-only settings, linked by lld-link as a WDM driver for dev
//! and release, and asserted on:
//!
//! PE32+ AMD64, subsystem NATIVE, IMAGE_DLLCHARACTERISTICS_WDM_DRIVER, entry point = the
//! exported `DriverEntry`, imports only from kernel images, a CheckSum that matches the file,
//! no `__chkstk` import and no function allocating 4 KiB or more in one step (read from the
//! x64 unwind data, which every function that moves `rsp` has), and the log channel
//! (`ntoskrnl.exe!DbgPrintEx`, driver/windows/kernel/src/log.rs) imported. Then the GUID cross-check
//! against the DDK headers and clippy.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};

use super::{units_target_dir, verify_clippy, Units, MSVC};
use crate::inspect::pe::{self, DriverRules, PeImage};
use crate::report::Report;
use crate::targets::core::BUILD_STD_CORE;
use crate::targets::{link, Product, RustcLink};
use crate::toolchain::{repo_root, run, Toolchain};

const DRIVER_DIR: &str = "driver/windows/kernel";
const PACKAGE: &str = "hardmute-windows-kernel";
const GUID_CHECK: &str = "driver/windows/kernel/ddk/check-guids.py";

/// The kernel images a PortCls miniport may import from.
pub const KERNEL_IMAGES: &[&str] = &["ntoskrnl.exe", "hal.dll", "ks.sys", "portcls.sys"];
/// The driver's log channel (driver/windows/kernel/src/log.rs).
pub const LOG_IMPORT: &str = "ntoskrnl.exe!DbgPrintEx";
/// Functions on the driver's realtime path (the 1 ms timer callback and the calls PortCls may
/// make at any time while it runs) and the driver helpers they call, by source file. None may
/// log (the realtime rule): checked by `driver_realtime_path_never_logs`.
pub const REALTIME_FUNCTIONS: &[(&str, &[&str])] = &[
    (
        "driver/windows/kernel/src/wave.rs",
        &[
            "timer_callback",
            "st_get_position",
            "in_get_read_packet",
            "stream",
            "from_input",
        ],
    ),
    (
        "driver/windows/kernel/src/control.rs",
        &["with_bridge", "control_block"],
    ),
    ("driver/windows/kernel/src/ddk/access.rs", &["qpc"]),
];

/// The body of `fn name` in `src` (from its opening brace to the matching close), if any.
pub fn fn_body<'a>(src: &'a str, name: &str) -> Option<&'a str> {
    let needle = format!("fn {name}");
    let mut from = 0;
    while let Some(at) = src[from..].find(&needle) {
        let start = from + at;
        from = start + needle.len();
        // `fn name(` or `fn name<`: not a longer name with this prefix.
        let next = src[from..].chars().next()?;
        if next != '(' && next != '<' {
            continue;
        }
        let open = start + src[start..].find('{')?;
        let mut depth = 0usize;
        for (i, c) in src[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(&src[open..=open + i]);
                    }
                }
                _ => {}
            }
        }
        return None;
    }
    None
}

/// driver/windows/README.md's link line: a WDM driver for Windows 10, entry DriverEntry, no
/// CRT or default libraries, checksum set.
pub const LINK_FLAGS: &[&str] = &[
    "/DRIVER:WDM",
    "/SUBSYSTEM:NATIVE,10.0",
    "/ENTRY:DriverEntry",
    "/NODEFAULTLIB",
    "/RELEASE",
];

pub const RULES: DriverRules<'static> = DriverRules {
    entry: "DriverEntry",
    allowed_imports: KERNEL_IMAGES,
    wdm: true,
    checksum: true,
};

pub fn run_rows(toolchain: &Toolchain, report: &mut Report) {
    for (profile, release) in [("dev", false), ("release", true)] {
        report.step_noted("windows-driver", &format!("{MSVC} {profile}"), || {
            link_driver(toolchain, release).map(Some)
        });
    }
    report.step("windows-driver", "guids (DDK headers)", check_guids);
    report.step("windows-driver", "clippy", || clippy(toolchain));
}

/// Links the `.sys` and checks it; returns the row's note (largest frame, imported images).
fn link_driver(toolchain: &Toolchain, release: bool) -> Result<String> {
    let sys = link_sys(toolchain, release)?;
    let image = PeImage::parse(&fs::read(&sys)?)?;
    eprintln!("{}: {}", sys.display(), pe::summary(&image));
    pe::check_driver(&image, &RULES).with_context(|| sys.display().to_string())?;
    anyhow::ensure!(
        image.imports_named("DbgPrintEx").any(|i| i == LOG_IMPORT),
        "{}: the log channel {LOG_IMPORT} is not imported (driver/windows/kernel/src/log.rs)",
        sys.display()
    );
    let frame = image.largest_frame().map_or(0, |f| f.largest_alloc);
    let images: Vec<&str> = image.imported_dlls().collect();
    Ok(format!(
        "largest frame {frame} B; imports {}; logs through {LOG_IMPORT}",
        images.join(" ")
    ))
}

/// Links the driver and copies it to `hardmute_windows_kernel.sys` (what the installer renames to
/// `hardmute.sys`); returns that path. `windows-kernel` loads this very file under Wine.
pub fn link_sys(toolchain: &Toolchain, release: bool) -> Result<PathBuf> {
    toolchain.verify(&["lld-link"])?;
    let workspace = repo_root().join(DRIVER_DIR);
    let mut link_args = vec![format!("-Clinker={}", toolchain.llvm("lld-link").display())];
    link_args.extend(LINK_FLAGS.iter().map(|f| format!("-Clink-arg={f}")));
    let dll = link(
        toolchain,
        &RustcLink {
            workspace: &workspace,
            final_src: &workspace.join("src/lib.rs"),
            package: PACKAGE,
            product: Product::Lib,
            target: MSVC,
            build_std: BUILD_STD_CORE,
            sdkroot: None,
            link_args: &link_args,
            release,
        },
    )?;
    let sys = dll.with_extension("sys");
    fs::copy(&dll, &sys)?;
    Ok(sys)
}

fn check_guids() -> Result<()> {
    run(Command::new("python3")
        .arg(repo_root().join(GUID_CHECK))
        .current_dir(repo_root()))
}

fn clippy(toolchain: &Toolchain) -> Result<()> {
    toolchain.verify(&[])?;
    verify_clippy(toolchain)?;
    run(toolchain
        .cargo(&repo_root().join(DRIVER_DIR))
        .args(["clippy", "--package", PACKAGE, "--target", MSVC])
        .args(BUILD_STD_CORE)
        .arg("--target-dir")
        .arg(units_target_dir(MSVC, false, Units::Check))
        .args(["--", "-D", "warnings"]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The realtime rule for the kernel driver: no function on the timer/IO path (nor a driver
    /// helper it calls) contains a log call. The logger is the only code that reaches
    /// `DbgPrintEx`, so this also keeps the import off the IO path.
    #[test]
    fn driver_realtime_path_never_logs() {
        for (file, functions) in REALTIME_FUNCTIONS {
            let src = fs::read_to_string(repo_root().join(file)).expect(file);
            for name in *functions {
                let body = fn_body(&src, name)
                    .unwrap_or_else(|| panic!("{file}: no `fn {name}` (renamed? update the list)"));
                for banned in ["klog!", "log::", "DbgPrint"] {
                    assert!(
                        !body.contains(banned),
                        "{file}: `fn {name}` is on the realtime path and contains `{banned}`"
                    );
                }
            }
        }
        // The logger exists and is what the life-cycle code uses.
        let adapter = fs::read_to_string(repo_root().join("driver/windows/kernel/src/adapter.rs"))
            .expect("adapter.rs");
        let entry = fn_body(&adapter, "DriverEntry").expect("DriverEntry");
        assert!(entry.contains("klog!(") && entry.contains("DriverEntry"));
    }

    #[test]
    fn fn_body_finds_the_matching_brace_and_not_a_prefix() {
        let src = "fn a_long() { x }\nfn a(v: u8) -> u8 { if v { 1 } else { 2 } }\nfn b() {}";
        assert_eq!(fn_body(src, "a"), Some("{ if v { 1 } else { 2 } }"));
        assert_eq!(fn_body(src, "a_long"), Some("{ x }"));
        assert_eq!(fn_body(src, "b"), Some("{}"));
        assert_eq!(fn_body(src, "c"), None);
    }
}
