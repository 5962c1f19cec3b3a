//! hardmute-install: create/remove the root-enumerated HardMute Microphone device (elevated),
//! or run the combined setup / removal of the MSI and the driver (as the user; it asks for
//! elevation only for the driver). Test-signing steps: README.md.

#[cfg(windows)]
mod owner;
#[cfg(windows)]
mod setupapi;

fn main() {
    let cmd = match hardmute_install::parse_args(std::env::args().skip(1)) {
        Ok(cmd) => cmd,
        Err(usage) => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    #[cfg(windows)]
    {
        if matches!(
            cmd,
            hardmute_install::Command::Setup { .. } | hardmute_install::Command::Remove { .. }
        ) {
            let sid = match owner::current_user_sid() {
                Ok(sid) => sid,
                Err(e) => {
                    eprintln!("hardmute-install: {e}");
                    std::process::exit(1);
                }
            };
            if let Some(plan) = hardmute_install::setup_plan(&cmd, &sid) {
                std::process::exit(run_plan(&plan));
            }
        }
        let result = match cmd {
            hardmute_install::Command::Install { inf, owner } => {
                // The owner first: the driver reads it when it loads, which the install does.
                match owner.as_deref().map(owner::record_owner) {
                    Some(Err(e)) => Err(e),
                    _ => setupapi::install(&inf),
                }
            }
            hardmute_install::Command::Uninstall => setupapi::uninstall(),
            _ => unreachable!("setup and remove have a plan"),
        };
        match result {
            Ok(msg) => println!("{msg}"),
            Err(e) => {
                eprintln!("hardmute-install: {e}");
                std::process::exit(1);
            }
        }
    }
    #[cfg(not(windows))]
    {
        eprintln!("hardmute-install only runs on Windows (asked: {cmd:?})");
        std::process::exit(1);
    }
}

/// Runs the steps in order; on a failed step, its undo steps, then stops with 1.
#[cfg(windows)]
fn run_plan(plan: &[(hardmute_install::Step, Vec<hardmute_install::Step>)]) -> i32 {
    for (step, undo) in plan {
        if let Err(e) = run_step(step) {
            eprintln!("hardmute-install: {step:?} failed: {e}");
            for u in undo {
                if let Err(e) = run_step(u) {
                    eprintln!("hardmute-install: rolling back with {u:?} failed too: {e}");
                }
            }
            return 1;
        }
    }
    0
}

#[cfg(windows)]
fn run_step(step: &hardmute_install::Step) -> Result<(), String> {
    use std::process::Command;
    let status = match step {
        hardmute_install::Step::Msiexec(args) => Command::new("msiexec.exe").args(args).status(),
        hardmute_install::Step::Elevated(args) => {
            // One UAC prompt through the shell's "runas" verb; waits for the elevated copy and
            // passes its exit code on.
            let exe = std::env::current_exe().map_err(|e| e.to_string())?;
            let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
            let list: Vec<String> = args.iter().map(|a| quote(a)).collect();
            let script = format!(
                "$p = Start-Process -FilePath {} -ArgumentList {} -Verb RunAs -Wait -PassThru; exit $p.ExitCode",
                quote(&exe.to_string_lossy()),
                list.join(",")
            );
            Command::new("powershell.exe")
                .args(["-NoProfile", "-NonInteractive", "-Command", &script])
                .status()
        }
    }
    .map_err(|e| e.to_string())?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("exit status {status}"))
    }
}
