//! hardmute-install: create/remove the root-enumerated HardMute Microphone device.
//! Must run elevated. Test-signing steps: README.md.

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
        let result = match cmd {
            hardmute_install::Command::Install { inf } => setupapi::install(&inf),
            hardmute_install::Command::Uninstall => setupapi::uninstall(),
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
