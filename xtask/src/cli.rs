//! Command line: `cargo xtask cross-check <stage>...`, the stage list, and the summary.

use std::process::ExitCode;

use crate::report::Report;
use crate::toolchain::{self, Toolchain};
use crate::{deps, targets};

/// A stage of `cross-check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Deps,
    Core,
    Crates,
    Selftest,
    Macos,
    MacosRun,
    Windows,
    WindowsWine,
    WindowsKernel,
    WindowsMsi,
}

impl Stage {
    const ALL: &'static [Stage] = &[
        Stage::Deps,
        Stage::Core,
        Stage::Crates,
        Stage::Selftest,
        Stage::Macos,
        Stage::MacosRun,
        Stage::Windows,
        Stage::WindowsWine,
        Stage::WindowsKernel,
        Stage::WindowsMsi,
    ];

    fn name(self) -> &'static str {
        match self {
            Stage::Deps => "deps",
            Stage::Core => "core",
            Stage::Crates => "crates",
            Stage::Selftest => "selftest",
            Stage::Macos => "macos",
            Stage::MacosRun => "macos-run",
            Stage::Windows => "windows",
            Stage::WindowsWine => "windows-wine",
            Stage::WindowsKernel => "windows-kernel",
            Stage::WindowsMsi => "windows-msi",
        }
    }

    fn help(self) -> &'static str {
        match self {
            Stage::Deps => "install the rig's system packages and inputs (root, Debian 12; idempotent)",
            Stage::Core => "hardmute-core with -Zbuild-std=core for Windows msvc and both macOS targets, linked into a kernel image / bundles",
            Stage::Crates => "cargo check of crates declaring package.metadata.hardmute.cross-check targets",
            Stage::Selftest => "link + inspect throwaway Mach-O bundle / PE DLL / kernel image (proves the plumbing)",
            Stage::Macos => "HAL plug-in bundles for both Apple targets (imports pinned), universal HardMute.driver + Info.plist, bridge probe executables",
            Stage::MacosRun => "the shipped plug-in's x86_64 slice loaded on Linux and driven through the simulated coreaudiod (needs `macos` first)",
            Stage::Windows => "WDM kernel driver .sys (dev+release, PE/frame rules, GUIDs, clippy), userspace programs linked for msvc+gnu, installer",
            Stage::WindowsWine => "the Windows crates' listed test targets (x86_64-pc-windows-gnu) run under headless wine",
            Stage::WindowsKernel => "the release driver .sys loaded by Wine's kernel layer with a stand-in portcls.sys, driven through its control device",
            Stage::WindowsMsi => "the user-space MSI (installer/windows/wix) built by wixl from the msvc programs, tables asserted",
        }
    }

    /// Stages `all` runs: every verification stage (deps installs, it verifies nothing).
    fn in_all(self) -> bool {
        !matches!(self, Stage::Deps)
    }

    fn run(self, toolchain: &Toolchain, report: &mut Report) {
        match self {
            Stage::Deps => report.step("deps", "host", || deps::install(toolchain)),
            Stage::Core => targets::core::run_stage(toolchain, report),
            Stage::Crates => targets::crates::run_stage(toolchain, report),
            Stage::Selftest => targets::selftest::run_stage(toolchain, report),
            Stage::Macos => targets::macos::run_stage(toolchain, report),
            Stage::MacosRun => targets::macos_run::run_stage(toolchain, report),
            Stage::Windows => targets::windows::run_stage(toolchain, report),
            Stage::WindowsWine => targets::windows::run_wine_stage(toolchain, report),
            Stage::WindowsKernel => targets::windows::run_kernel_stage(toolchain, report),
            Stage::WindowsMsi => targets::windows::run_msi_stage(toolchain, report),
        }
    }
}

fn usage() -> String {
    let mut text = String::from("usage: cargo xtask cross-check <stage>...\n\nstages:\n");
    for stage in Stage::ALL {
        text.push_str(&format!("  {:<12} {}\n", stage.name(), stage.help()));
    }
    let all: Vec<&str> = Stage::ALL
        .iter()
        .filter(|s| s.in_all())
        .map(|s| s.name())
        .collect();
    text.push_str(&format!("  {:<12} {}\n", "all", all.join(" + ")));
    text.push_str(&format!(
        "\ncaches: ${} (default ~/.cache/hardmute-xcheck)\n",
        toolchain::CACHE_ENV
    ));
    text
}

fn parse_stages(args: &[String]) -> Result<Vec<Stage>, String> {
    let mut stages = Vec::new();
    for arg in args {
        let picked: Vec<Stage> = match arg.as_str() {
            "all" => Stage::ALL.iter().copied().filter(|s| s.in_all()).collect(),
            name => vec![*Stage::ALL
                .iter()
                .find(|s| s.name() == name)
                .ok_or_else(|| format!("unknown stage `{name}`"))?],
        };
        for stage in picked {
            if !stages.contains(&stage) {
                stages.push(stage);
            }
        }
    }
    if stages.is_empty() {
        return Err("no stage given".into());
    }
    Ok(stages)
}

pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let stages = match args.split_first() {
        Some((cmd, rest)) if cmd == "cross-check" => parse_stages(rest),
        Some((cmd, _)) if cmd == "-h" || cmd == "--help" || cmd == "help" => {
            print!("{}", usage());
            return ExitCode::SUCCESS;
        }
        Some((cmd, _)) => Err(format!("unknown command `{cmd}`")),
        None => Err("no command given".into()),
    };
    let stages = match stages {
        Ok(stages) => stages,
        Err(message) => {
            eprint!("error: {message}\n\n{}", usage());
            return ExitCode::from(2);
        }
    };
    let toolchain = Toolchain::debian();
    let mut report = Report::default();
    for stage in stages {
        stage.run(&toolchain, &mut report);
    }
    eprintln!();
    print!("{}", report.table());
    if report.all_passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn all_expands_to_verification_stages_without_duplicates() {
        let stages = parse_stages(&args(&["core", "all"])).unwrap();
        assert_eq!(
            stages,
            [
                Stage::Core,
                Stage::Crates,
                Stage::Selftest,
                Stage::Macos,
                Stage::MacosRun,
                Stage::Windows,
                Stage::WindowsWine,
                Stage::WindowsKernel,
                Stage::WindowsMsi
            ]
        );
        assert!(!stages.contains(&Stage::Deps));
    }

    #[test]
    fn unknown_or_missing_stage_is_an_error() {
        assert!(parse_stages(&args(&["mac"])).is_err());
        assert!(parse_stages(&[]).is_err());
        assert_eq!(parse_stages(&args(&["deps"])).unwrap(), [Stage::Deps]);
        assert_eq!(
            parse_stages(&args(&["windows-wine", "windows"])).unwrap(),
            [Stage::WindowsWine, Stage::Windows]
        );
    }
}
