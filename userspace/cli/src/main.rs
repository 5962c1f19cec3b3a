//! `hardmute`: control the HardMute Microphone from a terminal or a script.

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use hardmute_ipc::{
    ChangeSource, Client, ClientError, DaemonOption, ErrorBody, HotkeyMode, InputDevice,
    ListenTarget, Listener, State,
};
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit codes (also in `hardmute --help` and README.md).
mod exit {
    pub const OK: u8 = 0;
    /// hardmuted answered with an error (or the connection to it broke).
    pub const DAEMON_ERROR: u8 = 1;
    /// Bad command line.
    pub const USAGE: u8 = 2;
    /// hardmuted is not running.
    pub const NOT_RUNNING: u8 = 3;
    /// `hardmute check` found a route to the room open.
    pub const ROUTE_OPEN: u8 = 4;
}

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  hardmuted reported an error (e.g. unknown device, backend failure, refused) or the connection broke
  2  usage error (bad command line)
  3  hardmuted is not running (start it with the service command below)
  4  `hardmute check` found a route by which apps can hear the room while muted
`hardmute is-muted` answers through its exit code: 0 muted, 1 live, 3 not running, 4 error.
`hardmute leak-test` has its own exit codes: see `hardmute leak-test --help`.

With --json every result is one JSON document per line on stdout; errors too:
  {\"error\":{\"kind\":\"unknown_device\",\"message\":\"...\"}}

Starting hardmuted:
  Linux (.deb or `hardmute install`):  systemctl --user start hardmuted
  macOS (pkg):                         launchctl kickstart gui/$UID/org.hardmute.daemon
  Windows (MSI):                       the \"HardMute daemon\" shortcut in the Startup folder
                                       starts it at logon; now: start hardmuted.exe";

#[derive(Parser)]
#[command(
    name = "hardmute",
    version,
    about = "Control the HardMute Microphone: a virtual mic whose driver delivers exact zeros while muted.",
    after_help = EXIT_CODES
)]
struct Cli {
    /// Machine-readable output: one JSON document per line.
    #[arg(long, global = true)]
    json: bool,
    /// Socket of hardmuted (default: $HARDMUTE_SOCKET, else $XDG_RUNTIME_DIR/hardmute/hardmute.sock).
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Show the mute state, the input in use and the driver's counters.
    Status,
    /// Hard-mute: apps read exact zeros from the moment this returns.
    Mute,
    /// Unmute (only the user's own session can).
    Unmute,
    /// Mute if unmuted, unmute if muted.
    Toggle,
    /// Print the state, then every change, until Ctrl-C.
    Watch,
    /// List the physical inputs that can feed the HardMute Microphone.
    Devices,
    /// Feed the HardMute Microphone from another physical input ("default" = the system default).
    Use {
        /// A name from `hardmute devices`, or "default".
        device: String,
    },
    /// List the processes capturing the HardMute Microphone or a physical mic.
    Listeners,
    /// Exit code only, for scripts: 0 muted, 1 live, 3 hardmuted not running, 4 other error.
    /// Prints nothing (with --json: {"muted":true|false}).
    IsMuted,
    /// Try every route by which an app could hear the room while muted (the default input,
    /// each physical mic, links into HardMute, apps recording a physical mic) and print a
    /// table: route, OPEN/closed, how to close it. On Linux it records through each route for
    /// about 0.3 s while muted. Exit status 4 when a route is open.
    Check,
    /// Make the HardMute Microphone the default input again, so apps that record "the default"
    /// (most do) are covered by the mute. The input you had picked feeds HardMute instead.
    Protect,
    /// Run the "Are You Really Muted?" attack against hard mute and write a report
    /// (runs the `hardmute-leak-test` program with every argument; see `hardmute leak-test --help`).
    #[command(disable_help_flag = true)]
    LeakTest {
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "ARGS"
        )]
        args: Vec<String>,
    },
    /// Install HardMute for this user (Linux): the PipeWire drop-in that loads the gate into
    /// PipeWire (PipeWire is restarted once so it loads it), and hardmuted as a systemd user
    /// unit, enabled and started.
    #[cfg(target_os = "linux")]
    Install {
        /// Write the files only; do not restart PipeWire or talk to the user's systemd now.
        #[arg(long)]
        no_activate: bool,
        /// The gate plugin (libhardmute_linux_gate.so) the drop-in loads. Default: beside this
        /// program, else ../lib/hardmute/ from it, else /usr/lib/hardmute/.
        #[arg(long, value_name = "PATH")]
        gate_plugin: Option<PathBuf>,
        /// Make the gate mandatory: PipeWire refuses to start when it cannot load it (default:
        /// PipeWire starts without HardMute Microphone, and hardmuted reports it missing).
        #[arg(long, hide = true)]
        gate_mandatory: bool,
        /// Also turn the guard on (`hardmute guard on`).
        #[arg(long)]
        guard: bool,
    },
    /// The guard (Linux): apps cannot open the physical mic at all, only hardmuted and the
    /// session manager can (off by default: docs/threat-model.md). Writes or removes the
    /// PipeWire and WirePlumber configuration; PipeWire and WirePlumber are restarted once.
    #[cfg(target_os = "linux")]
    Guard {
        #[arg(value_enum)]
        state: GuardArg,
        /// Write or remove the files only; do not restart PipeWire and WirePlumber now.
        #[arg(long)]
        no_activate: bool,
    },
    /// The guard: hardmuted holds the physical mic so other apps cannot open it (macOS: hog
    /// mode; Windows: exclusive mode). Off by default: it takes the mic from every other app,
    /// the OS's own included (docs/threat-model.md). `status` says whether it holds.
    #[cfg(not(target_os = "linux"))]
    Guard {
        #[arg(value_enum)]
        state: GuardArg,
    },
    /// Remove everything `hardmute install` wrote (Linux). The HardMute Microphone node stays
    /// until PipeWire restarts, delivering zeros, so no app falls back to the physical mic.
    #[cfg(target_os = "linux")]
    Uninstall {
        /// Remove the files only; do not talk to the user's systemd now.
        #[arg(long)]
        no_activate: bool,
    },
    /// Change a daemon option.
    Set {
        #[command(subcommand)]
        option: SetOption,
    },
    /// Print the completion script for SHELL to stdout (the packages install them).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the man pages (hardmute.1 and one per subcommand) into DIR (for packagers).
    #[command(hide = true)]
    ManPages {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum GuardArg {
    On,
    Off,
    /// Whether the guard is on (Linux: its files are installed; macOS/Windows: and whether
    /// hardmuted holds the mic).
    Status,
}

#[derive(Subcommand)]
enum SetOption {
    /// Close the physical mic while muted (the OS mic indicator goes off).
    ReleaseOnMute {
        #[arg(value_parser = parse_on_off, action = clap::ArgAction::Set, value_name = "on|off")]
        value: bool,
    },
    /// Start muted on every launch, whatever the last state was.
    StartMuted {
        #[arg(value_parser = parse_on_off, action = clap::ArgAction::Set, value_name = "on|off")]
        value: bool,
    },
    /// The global hotkey the panel grabs: modifiers and one key joined by '+' (Ctrl+Alt+M), or
    /// "none".
    Hotkey {
        #[arg(value_name = "KEYS|none")]
        keys: String,
    },
    /// How the hotkey acts: toggle (each press flips) or push-to-talk (live while held).
    HotkeyMode {
        #[arg(value_enum)]
        mode: HotkeyModeArg,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum HotkeyModeArg {
    Toggle,
    PushToTalk,
}

fn parse_on_off(value: &str) -> Result<bool, String> {
    match value {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        other => Err(format!("{other:?} is not on/off")),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    // The leak test needs no daemon: it drives the delivery path (or a private PipeWire) itself.
    match &cli.command {
        Cmd::LeakTest { args } => return ExitCode::from(leak_test::run(args)),
        Cmd::Completions { shell } => {
            let mut cmd = completion_command();
            clap_complete::generate(*shell, &mut cmd, "hardmute", &mut std::io::stdout());
            return ExitCode::from(exit::OK);
        }
        Cmd::ManPages { dir } => {
            return ExitCode::from(match man_pages(dir) {
                Ok(pages) => {
                    for p in pages {
                        println!("{}", p.display());
                    }
                    exit::OK
                }
                Err(e) => {
                    eprintln!(
                        "hardmute: writing the man pages into {}: {e}",
                        dir.display()
                    );
                    exit::DAEMON_ERROR
                }
            });
        }
        Cmd::IsMuted => return ExitCode::from(is_muted(cli.socket, cli.json)),
        _ => {}
    }
    #[cfg(target_os = "linux")]
    if let Some(code) = install::run(&cli.command, cli.json, cli.socket.clone()) {
        return ExitCode::from(code);
    }
    let json = cli.json;
    if let Cmd::Check = cli.command {
        return ExitCode::from(match run_check(cli.socket, json) {
            Ok(report) if report.open > 0 => exit::ROUTE_OPEN,
            Ok(_) => exit::OK,
            Err(e) => report_error(&e, json),
        });
    }
    match run(cli) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => ExitCode::from(report_error(&e, json)),
    }
}

/// `hardmute install` / `uninstall`: no daemon needed, they set up (or remove) what starts it.
#[cfg(target_os = "linux")]
mod install {
    use super::{emit_json, exit, Cmd};
    use hardmute_installer_linux as inst;
    use std::path::{Path, PathBuf};

    /// `Some(exit code)` when `cmd` was an install command.
    pub fn run(cmd: &Cmd, json: bool, socket: Option<PathBuf>) -> Option<u8> {
        let (installing, no_activate, gate) = match cmd {
            Cmd::Install {
                no_activate,
                gate_plugin,
                gate_mandatory,
                guard,
            } => (
                true,
                *no_activate,
                Some((gate_plugin.clone(), *gate_mandatory, *guard)),
            ),
            Cmd::Uninstall { no_activate } => (false, *no_activate, None),
            Cmd::Guard { state, no_activate } => {
                return Some(guard_cmd(*state, *no_activate, json))
            }
            _ => return None,
        };
        let Some(home) = std::env::var_os("HOME").map(PathBuf::from) else {
            eprintln!("hardmute: HOME is not set; cannot find the user's systemd folder");
            return Some(exit::DAEMON_ERROR);
        };
        let result = match gate {
            Some((plugin, mandatory, guard)) => install(&home, no_activate, plugin, mandatory)
                .and_then(|(mut paths, w)| {
                    if guard {
                        let config = crate::guard::config_dir().unwrap_or(home.join(".config"));
                        paths.extend(guard_write(&config)?);
                        if !no_activate {
                            let _ = restart_wireplumber();
                        }
                    }
                    Ok((paths, w))
                }),
            None => uninstall(&home, no_activate, socket),
        };
        Some(match result {
            Ok((paths, warning)) => {
                if json {
                    emit_json(&serde_json::json!({ "paths": paths, "warning": warning }));
                } else {
                    let verb = if installing { "wrote" } else { "removed" };
                    for p in &paths {
                        println!("{verb} {}", p.display());
                    }
                    if let Some(w) = warning {
                        eprintln!("hardmute: {w}");
                    }
                }
                exit::OK
            }
            Err(e) => {
                eprintln!("hardmute: {e}");
                exit::DAEMON_ERROR
            }
        })
    }

    type Outcome = std::io::Result<(Vec<PathBuf>, Option<String>)>;

    fn install(
        home: &Path,
        no_activate: bool,
        plugin: Option<PathBuf>,
        mandatory: bool,
    ) -> Outcome {
        // The gate first: a drop-in naming a plugin that is not there would leave PipeWire
        // without HardMute Microphone.
        let plugin = match plugin {
            Some(p) => std::path::absolute(&p)?,
            None => gate_plugin_path().ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!(
                        "the gate plugin {} was not found beside this program or in \
                         /usr/lib/hardmute/; pass --gate-plugin PATH",
                        gate::abi::PLUGIN_FILE
                    ),
                )
            })?,
        };
        if !plugin.is_file() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("the gate plugin {} does not exist", plugin.display()),
            ));
        }
        let plugin_str = plugin.to_str().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the gate plugin's path is not UTF-8",
            )
        })?;
        let dropin = dropin_path(home);
        if let Some(dir) = dropin.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = dropin.with_extension("conf.tmp");
        std::fs::write(&tmp, gate::dropin::render(plugin_str, mandatory))?;
        std::fs::rename(&tmp, &dropin)?;
        let mut paths = vec![dropin];

        let opts = inst::UnitOptions {
            exec: daemon_path(),
            ..inst::UnitOptions::default()
        };
        paths.extend(inst::install(home, &opts)?);
        let mut warnings = Vec::new();
        if !no_activate {
            // PipeWire reads its drop-ins at start only.
            eprintln!(
                "hardmute: restarting PipeWire once so it loads HardMute Microphone (audio \
                 streams stop for a moment)"
            );
            if let Err(e) = restart_pipewire() {
                warnings.push(format!(
                    "could not restart PipeWire ({e}); HardMute Microphone appears at its next start"
                ));
            }
            if let Err(e) = inst::activate() {
                warnings.push(format!("the unit is installed and enabled for the next login, but starting it now failed: {e}"));
            }
        }
        Ok((paths, (!warnings.is_empty()).then(|| warnings.join("; "))))
    }

    fn uninstall(home: &Path, no_activate: bool, socket: Option<PathBuf>) -> Outcome {
        // First give the default input back (hardmuted remembers what HardMute replaced), while
        // the daemon still runs.
        let restore_warning = match super::connect(socket).and_then(|mut c| c.restore_default()) {
            Ok(state) => {
                if let Some(name) = &state.default_input {
                    eprintln!("hardmute: default input is now {name}");
                }
                None
            }
            Err(e) => Some(format!(
                "could not ask hardmuted to give the default input back ({e}); if the HardMute \
                 Microphone is still your default input, pick your microphone in the sound settings"
            )),
        };
        let stop_warning = (!no_activate)
            .then(|| inst::deactivate().err())
            .flatten()
            .map(|e| format!("could not stop the running daemon through systemd: {e}"));
        let mut paths = Vec::new();
        let dropin = dropin_path(home);
        match std::fs::remove_file(&dropin) {
            Ok(()) => {
                // The folders install made, if nothing else is in them.
                let conf_d = dropin.parent().map(Path::to_path_buf);
                let pipewire = conf_d
                    .as_deref()
                    .and_then(Path::parent)
                    .map(Path::to_path_buf);
                paths.push(dropin);
                for dir in [conf_d, pipewire].into_iter().flatten() {
                    if std::fs::remove_dir(&dir).is_ok() {
                        paths.push(dir);
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        paths.extend(inst::uninstall(home)?);
        if let Some(config) = crate::guard::config_dir() {
            paths.extend(crate::guard::remove(&config)?);
        }
        let warning = match (restore_warning, stop_warning) {
            (Some(a), Some(b)) => Some(format!("{a}; {b}")),
            (a, b) => a.or(b),
        };
        Ok((paths, warning))
    }

    use hardmute_linux_gate as gate;

    /// `$XDG_CONFIG_HOME/pipewire/pipewire.conf.d/50-hardmute.conf` (`~/.config` by default).
    fn dropin_path(home: &Path) -> PathBuf {
        let config = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .unwrap_or_else(|| home.join(".config"));
        config
            .join("pipewire")
            .join("pipewire.conf.d")
            .join(gate::dropin::FILE_NAME)
    }

    /// The gate plugin: beside this program (a cargo build), else `../lib/hardmute/` from it
    /// (a .deb: /usr/bin -> /usr/lib/hardmute), else /usr/lib/hardmute.
    fn gate_plugin_path() -> Option<PathBuf> {
        let exe_dir = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_path_buf));
        let mut candidates = Vec::new();
        if let Some(d) = &exe_dir {
            candidates.push(d.join(gate::abi::PLUGIN_FILE));
            candidates.push(d.join("../lib/hardmute").join(gate::abi::PLUGIN_FILE));
        }
        candidates.push(Path::new("/usr/lib/hardmute").join(gate::abi::PLUGIN_FILE));
        candidates
            .into_iter()
            .find(|p| p.is_file())
            .and_then(|p| p.canonicalize().ok())
    }

    /// `hardmute guard on|off|status`.
    fn guard_cmd(state: super::GuardArg, no_activate: bool, json: bool) -> u8 {
        use crate::guard;
        let Some(config) = guard::config_dir() else {
            eprintln!("hardmute: neither XDG_CONFIG_HOME nor HOME is set");
            return exit::DAEMON_ERROR;
        };
        let result = match state {
            super::GuardArg::Status => {
                let on = guard::is_on(&config);
                if json {
                    emit_json(&serde_json::json!({ "guard": on }));
                } else {
                    println!(
                        "guard: {} (configuration {}; `hardmute check` tests whether it holds)",
                        if on { "on" } else { "off" },
                        if on { "installed" } else { "not installed" }
                    );
                }
                return exit::OK;
            }
            super::GuardArg::On => guard_write(&config),
            super::GuardArg::Off => guard::remove(&config),
        };
        let paths = match result {
            Ok(p) => p,
            Err(e) => {
                eprintln!("hardmute: {e}");
                return exit::DAEMON_ERROR;
            }
        };
        let mut warning = None;
        if !no_activate {
            eprintln!(
                "hardmute: restarting PipeWire and WirePlumber once so the guard setting takes \
                 effect (audio streams stop for a moment)"
            );
            if let Err(e) = restart_pipewire().and_then(|()| restart_wireplumber()) {
                warning = Some(format!(
                    "could not restart PipeWire/WirePlumber ({e}); the setting applies at their next start"
                ));
            }
        }
        if json {
            emit_json(&serde_json::json!({ "paths": paths, "warning": warning }));
        } else {
            let verb = if matches!(state, super::GuardArg::On) {
                "wrote"
            } else {
                "removed"
            };
            for p in &paths {
                println!("{verb} {}", p.display());
            }
            if let Some(w) = warning {
                eprintln!("hardmute: {w}");
            }
        }
        exit::OK
    }

    /// Writes the guard for the PipeWire found on PATH (`pipewire --version`).
    fn guard_write(config: &Path) -> std::io::Result<Vec<PathBuf>> {
        use crate::guard;
        let version = std::process::Command::new("pipewire")
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let system = guard::system_conf();
        if guard::access_mode(&version) == guard::AccessMode::Legacy {
            eprintln!(
                "hardmute: warning: PipeWire before 0.3.75 crashed under some forms of the \
                 guard's permission updates in HardMute's tests (the shipped script avoids them; \
                 docs/threat-model.md)"
            );
        }
        guard::write(
            config,
            &daemon_path(),
            guard::access_mode(&version),
            system.as_deref(),
        )
    }

    fn restart_wireplumber() -> std::io::Result<()> {
        let status = std::process::Command::new("systemctl")
            .args(["--user", "restart", "wireplumber.service"])
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(std::io::Error::other(format!(
                "systemctl exited with {status}"
            )))
        }
    }

    fn restart_pipewire() -> std::io::Result<()> {
        let status = std::process::Command::new("systemctl")
            .args(["--user", "restart", "pipewire.service"])
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(std::io::Error::other(format!(
                "systemctl exited with {status}"
            )))
        }
    }

    /// The `hardmuted` beside this `hardmute` (a cargo build, a .deb's /usr/bin), else /usr/bin.
    fn daemon_path() -> PathBuf {
        std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|d| d.join("hardmuted")))
            .filter(|p| p.is_file())
            .unwrap_or_else(|| inst::UnitOptions::default().exec)
    }
}

/// `hardmute leak-test`: runs the `hardmute-leak-test` program, so `hardmute` links none of its
/// classifier, plotting and audio I/O crates.
mod leak_test {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    pub const PROGRAM: &str = if cfg!(windows) {
        "hardmute-leak-test.exe"
    } else {
        "hardmute-leak-test"
    };

    /// The leak test's own exit code for "usage or backend error".
    const ERROR: u8 = 3;

    /// `hardmute-leak-test` beside this program (a cargo build, /usr/bin, the MSI's folder),
    /// else the first on PATH.
    pub fn find(beside: Option<&Path>, path: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
        let sibling = beside.map(|dir| dir.join(PROGRAM));
        sibling
            .into_iter()
            .chain(
                path.into_iter()
                    .flat_map(std::env::split_paths)
                    .map(|d| d.join(PROGRAM)),
            )
            .find(|p| p.is_file())
    }

    pub fn run(args: &[String]) -> u8 {
        let exe_dir = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_path_buf));
        let Some(program) = find(exe_dir.as_deref(), std::env::var_os("PATH").as_deref()) else {
            eprintln!("hardmute: {}", missing_message());
            return ERROR;
        };
        match Command::new(&program).args(args).status() {
            Ok(status) => status
                .code()
                .and_then(|c| u8::try_from(c).ok())
                .unwrap_or(ERROR),
            Err(e) => {
                eprintln!("hardmute: cannot run {}: {e}", program.display());
                ERROR
            }
        }
    }

    pub fn missing_message() -> String {
        format!(
            "`hardmute leak-test` needs the {PROGRAM} program beside hardmute or on PATH, and it \
             is not installed. Install it with the HardMute package, or build it from the source \
             tree: `cargo build --release -p hardmute-leaktest` (it lands in target/release/ \
             beside hardmute)"
        )
    }
}

/// `hardmute is-muted`: 0 muted, 1 live, 3 not running, 4 any other error.
fn is_muted(socket: Option<PathBuf>, json: bool) -> u8 {
    const LIVE: u8 = 1;
    const ERROR: u8 = 4;
    match connect(socket).and_then(|mut c| c.status()) {
        Ok(state) => {
            if json {
                emit_json(&serde_json::json!({ "muted": state.muted }));
            }
            if state.muted {
                exit::OK
            } else {
                LIVE
            }
        }
        Err(e) => match report_error(&e, json) {
            exit::NOT_RUNNING => exit::NOT_RUNNING,
            _ => ERROR,
        },
    }
}

/// The command line as completions offer it: without the hidden subcommands (clap_complete
/// lists hidden subcommands too).
fn completion_command() -> clap::Command {
    let full = Cli::command();
    clap::Command::new("hardmute")
        .version(env!("CARGO_PKG_VERSION"))
        .args(full.get_arguments().cloned())
        .subcommands(full.get_subcommands().filter(|s| !s.is_hide_set()).cloned())
}

/// Writes hardmute.1 and hardmute-<sub>.1 (nested: hardmute-set-hotkey.1) into `dir`.
fn man_pages(dir: &std::path::Path) -> std::io::Result<Vec<PathBuf>> {
    fn walk(
        cmd: clap::Command,
        (name, bin): (String, String),
        dir: &std::path::Path,
        out: &mut Vec<PathBuf>,
    ) -> std::io::Result<()> {
        if cmd.is_hide_set() {
            return Ok(());
        }
        let cmd = cmd.name(name.clone()).bin_name(bin.clone());
        let subs: Vec<clap::Command> = cmd.get_subcommands().cloned().collect();
        let path = dir.join(format!("{name}.1"));
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut page)?;
        std::fs::write(&path, page)?;
        out.push(path);
        for sub in subs.into_iter().filter(|s| s.get_name() != "help") {
            let names = (
                format!("{name}-{}", sub.get_name()),
                format!("{bin} {}", sub.get_name()),
            );
            walk(sub, names, dir, out)?;
        }
        Ok(())
    }
    std::fs::create_dir_all(dir)?;
    let mut out = Vec::new();
    let mut cmd = Cli::command();
    cmd.build();
    walk(cmd, ("hardmute".into(), "hardmute".into()), dir, &mut out)?;
    Ok(out)
}

/// How to start hardmuted where the packages install it.
fn start_hint() -> &'static str {
    if cfg!(target_os = "linux") {
        "start it with `systemctl --user start hardmuted` (set up by the .deb or `hardmute install`), or run `hardmuted` in a terminal"
    } else if cfg!(target_os = "macos") {
        "start it with `launchctl kickstart gui/$(id -u)/org.hardmute.daemon` (the pkg's LaunchAgent), or run `hardmuted` in a terminal"
    } else if cfg!(windows) {
        "the MSI starts it at logon from the \"HardMute daemon\" shortcut in your Startup folder; start it now with `start hardmuted.exe`"
    } else {
        "start it with `hardmuted`"
    }
}

mod check;
#[cfg(target_os = "linux")]
mod guard;

/// `hardmute check`: hardmuted's view (default input, direct recorders), then on Linux the
/// routes tried by recording.
fn run_check(socket: Option<PathBuf>, json: bool) -> Result<check::Report, ClientError> {
    let mut client = connect(socket)?;
    let state = client.status()?;
    let listeners = client.listeners().unwrap_or_default();
    #[allow(unused_mut)]
    let mut routes = check::daemon_routes(&state, &listeners);
    #[cfg(target_os = "linux")]
    if state.backend == "linux" {
        let guard_on = guard::config_dir().is_some_and(|c| guard::is_on(&c));
        let known: Vec<String> = state.device.iter().cloned().collect();
        routes.extend(check::linux::routes(state.muted, guard_on, &known));
    } else {
        routes.push(check::guard_route(state.guard.as_ref()));
    }
    #[cfg(not(target_os = "linux"))]
    routes.push(check::guard_route(state.guard.as_ref()));
    #[cfg(not(target_os = "linux"))]
    routes.push(check::Route {
        route: "physical mics (by name)".into(),
        status: check::Verdict::Unknown,
        detail: "not tried by recording on this OS yet".into(),
        fix: "see docs/threat-model.md".into(),
    });
    let report = check::Report::new(state.muted, routes);
    if json {
        emit_json(&report);
    } else {
        check::print_table(&report);
    }
    Ok(report)
}

fn connect(socket: Option<PathBuf>) -> Result<Client, ClientError> {
    match socket {
        Some(path) => Client::connect(&path),
        None => Client::connect_default(),
    }
}

fn run(cli: Cli) -> Result<(), ClientError> {
    let json = cli.json;
    let mut client = connect(cli.socket)?;
    match cli.command {
        Cmd::Status => print_state(&client.status()?, json),
        Cmd::Mute => print_change(&client.mute(ChangeSource::Cli)?, json),
        Cmd::Unmute => print_change(&client.unmute(ChangeSource::Cli)?, json),
        Cmd::Toggle => print_change(&client.toggle(ChangeSource::Cli)?, json),
        Cmd::Devices => {
            let devices = client.devices()?;
            if json {
                emit_json(&devices);
            } else {
                let selected = client.status()?.device;
                print_devices(&devices, selected.as_deref());
            }
        }
        Cmd::Use { device } => {
            let device = (device != "default").then_some(device);
            let state = client.select_device(device.as_deref())?;
            if json {
                emit_json(&state);
            } else {
                println!(
                    "input: {}",
                    state.device.as_deref().unwrap_or("system default")
                );
            }
        }
        Cmd::Check => unreachable!("handled in main"),
        Cmd::Protect => {
            let state = client.protect_default()?;
            if json {
                emit_json(&state);
            } else {
                print_default_line(&state);
            }
        }
        Cmd::Listeners => {
            let listeners = client.listeners()?;
            if json {
                emit_json(&listeners);
            } else {
                print_listeners(&listeners);
            }
        }
        Cmd::LeakTest { .. } | Cmd::Completions { .. } | Cmd::ManPages { .. } | Cmd::IsMuted => {
            unreachable!("handled in main before connecting")
        }
        #[cfg(target_os = "linux")]
        Cmd::Install { .. } | Cmd::Uninstall { .. } | Cmd::Guard { .. } => {
            unreachable!("handled in main before connecting")
        }
        #[cfg(not(target_os = "linux"))]
        Cmd::Guard { state } => {
            let state = match state {
                GuardArg::Status => client.status()?,
                GuardArg::On => client.set_option(DaemonOption::Guard(true))?,
                GuardArg::Off => client.set_option(DaemonOption::Guard(false))?,
            };
            print_guard(&state, json);
        }
        Cmd::Set { option } => {
            let option = match option {
                SetOption::ReleaseOnMute { value } => DaemonOption::ReleaseOnMute(value),
                SetOption::StartMuted { value } => DaemonOption::StartMuted(value),
                SetOption::Hotkey { keys } if keys == "none" => DaemonOption::Hotkey(String::new()),
                SetOption::Hotkey { keys } => DaemonOption::Hotkey(keys),
                SetOption::HotkeyMode { mode } => DaemonOption::HotkeyMode(match mode {
                    HotkeyModeArg::Toggle => HotkeyMode::Toggle,
                    HotkeyModeArg::PushToTalk => HotkeyMode::PushToTalk,
                }),
            };
            print_state(&client.set_option(option)?, json);
        }
        Cmd::Watch => {
            let (state, changes) = client.subscribe()?;
            print_watch_line(&state, json);
            for change in changes {
                print_watch_line(&change?, json);
            }
            return Err(ClientError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "hardmuted closed the connection",
            )));
        }
    }
    Ok(())
}

/// Prints the error (JSON on stdout with --json, text on stderr otherwise) and picks the exit code.
fn report_error(error: &ClientError, json: bool) -> u8 {
    let (code, kind, message) = match error {
        ClientError::NotRunning { path, .. } => (
            exit::NOT_RUNNING,
            "not_running".to_owned(),
            format!(
                "hardmuted is not running; {}. Socket: {}",
                start_hint(),
                path.display()
            ),
        ),
        ClientError::Daemon(ErrorBody { kind, message }) => {
            (exit::DAEMON_ERROR, kind.to_string(), message.clone())
        }
        ClientError::Io(e) => (
            exit::DAEMON_ERROR,
            "io".to_owned(),
            format!("connection to hardmuted failed: {e}"),
        ),
        ClientError::Protocol(m) => (
            exit::DAEMON_ERROR,
            "protocol".to_owned(),
            format!("unexpected answer from hardmuted: {m}"),
        ),
    };
    if json {
        emit_json(&serde_json::json!({ "error": { "kind": kind, "message": message } }));
    } else {
        eprintln!("hardmute: {message}");
    }
    code
}

fn emit_json(value: &impl Serialize) {
    let line = serde_json::to_string(value).expect("plain data serializes");
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn mute_word(muted: bool) -> &'static str {
    if muted {
        "MUTED"
    } else {
        "unmuted"
    }
}

fn print_change(state: &State, json: bool) {
    if json {
        emit_json(state);
    } else {
        println!(
            "HardMute Microphone: {} (generation {})",
            mute_word(state.muted),
            state.generation
        );
    }
}

fn on_off(value: bool) -> &'static str {
    if value {
        "on"
    } else {
        "off"
    }
}

fn print_state(state: &State, json: bool) {
    if json {
        return emit_json(state);
    }
    let c = &state.counters;
    println!("HardMute Microphone: {}", mute_word(state.muted));
    if let Some(why) = &state.not_owner {
        println!("  NOT YOURS:        {why}");
    }
    println!(
        "  last change:      by {} (generation {})",
        state.source, state.generation
    );
    println!("  backend:          {}", state.backend);
    println!(
        "  input:            {}",
        state.device.as_deref().unwrap_or("system default")
    );
    println!(
        "  physical mic:     {}",
        if state.physical_open {
            "open"
        } else {
            "released"
        }
    );
    println!(
        "  options:          release on mute {}, start muted {}, unmute fade {} ms, hotkey {} ({})",
        on_off(state.release_on_mute),
        on_off(state.start_muted),
        state.fade_ms,
        state.hotkey.as_deref().unwrap_or("none"),
        state.hotkey_mode
    );
    println!(
        "  delivered:        {} frames ({} zeroed), underruns {}, overruns {}",
        c.frames_delivered, c.frames_zeroed, c.underruns, c.overruns
    );
    if let Some(leaked) = c.nonzero_samples_while_muted {
        println!("  non-zero samples read while muted: {leaked}");
    }
    print_default_line(state);
    if let Some(guard) = &state.guard {
        println!("  guard:            {}", check::guard_line(guard));
    }
}

/// `hardmute guard ...` where hardmuted holds the guard (macOS, Windows).
#[cfg(not(target_os = "linux"))]
fn print_guard(state: &State, json: bool) {
    let guard = state.guard.as_ref();
    if json {
        return emit_json(&serde_json::json!({
            "guard": guard.is_some_and(|g| g.on),
            "holds": guard.is_some_and(|g| g.holds),
            "why_not": guard.and_then(|g| g.why_not.clone()),
        }));
    }
    match guard {
        Some(g) => println!("guard: {}", check::guard_line(g)),
        None => println!(
            "guard: not available from the {} backend (docs/threat-model.md)",
            state.backend
        ),
    }
}

/// The default-input line of `status`: whether apps that record "the default" are protected,
/// and the fix when they are not.
fn print_default_line(state: &State) {
    match (state.default_input_protected, state.default_input.as_deref()) {
        (Some(true), _) => println!("  default input:    HardMute Microphone (apps on the default are protected)"),
        (Some(false), name) => println!(
            "  default input:    {} -- apps recording the default input are NOT protected by the mute; fix: `hardmute protect`",
            name.unwrap_or("none")
        ),
        (None, _) => {}
    }
}

fn print_watch_line(state: &State, json: bool) {
    if json {
        emit_json(state);
    } else {
        println!(
            "{} (by {}, generation {}, input {}, physical mic {}, release on mute {}, start muted {})",
            mute_word(state.muted),
            state.source,
            state.generation,
            state.device.as_deref().unwrap_or("system default"),
            if state.physical_open { "open" } else { "released" },
            on_off(state.release_on_mute),
            on_off(state.start_muted)
        );
    }
}

fn print_devices(devices: &[InputDevice], selected: Option<&str>) {
    if devices.is_empty() {
        println!("no physical inputs");
    }
    for device in devices {
        let in_use = match selected {
            Some(name) => name == device.name,
            None => device.is_default,
        };
        println!(
            "{} {:<24} {}{}",
            if in_use { "*" } else { " " },
            device.name,
            device.description,
            if device.is_default {
                " (system default)"
            } else {
                ""
            }
        );
    }
}

fn print_listeners(listeners: &[Listener]) {
    if listeners.is_empty() {
        println!("nobody is capturing audio");
    }
    for l in listeners {
        let target = match &l.target {
            ListenTarget::Virtual => "HardMute Microphone (gated)".to_owned(),
            ListenTarget::Physical { name } => format!("physical mic {name} (NOT gated)"),
        };
        let pid = l.pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into());
        println!(
            "{:<28} pid {:<8} {}  [{}]",
            l.app,
            pid,
            target,
            l.binary.as_deref().unwrap_or("?")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn help_lists_the_exit_codes() {
        let help = Cli::command().render_long_help().to_string();
        for line in [
            "0  success",
            "1  hardmuted reported an error",
            "2  usage error",
            "3  hardmuted is not running",
            "4  `hardmute check` found a route",
        ] {
            assert!(help.contains(line), "{line:?} missing from --help");
        }
    }

    #[test]
    fn leak_test_takes_every_argument_through() {
        let cli = Cli::try_parse_from(["hardmute", "leak-test", "--short", "--out", "x", "--help"])
            .unwrap();
        match cli.command {
            Cmd::LeakTest { args } => assert_eq!(args, ["--short", "--out", "x", "--help"]),
            _ => panic!("not the leak test"),
        }
    }

    #[test]
    fn on_off_values() {
        assert_eq!(parse_on_off("on"), Ok(true));
        assert_eq!(parse_on_off("0"), Ok(false));
        assert!(parse_on_off("maybe").is_err());
    }

    #[test]
    fn leak_test_program_is_found_beside_then_on_path() {
        let beside = tempfile::tempdir().unwrap();
        let on_path = tempfile::tempdir().unwrap();
        let path = std::env::join_paths([on_path.path()]).unwrap();
        assert_eq!(leak_test::find(Some(beside.path()), Some(&path)), None);
        std::fs::write(on_path.path().join(leak_test::PROGRAM), "").unwrap();
        assert_eq!(
            leak_test::find(Some(beside.path()), Some(&path)),
            Some(on_path.path().join(leak_test::PROGRAM))
        );
        std::fs::write(beside.path().join(leak_test::PROGRAM), "").unwrap();
        assert_eq!(
            leak_test::find(Some(beside.path()), Some(&path)),
            Some(beside.path().join(leak_test::PROGRAM))
        );
        assert!(leak_test::missing_message().contains("cargo build --release -p hardmute-leaktest"));
    }

    #[test]
    fn the_start_hint_names_the_service_command() {
        let hint = start_hint();
        if cfg!(target_os = "linux") {
            assert!(hint.contains("systemctl --user start hardmuted"), "{hint}");
        }
        let help = Cli::command().render_long_help().to_string();
        for line in [
            "systemctl --user start hardmuted",
            "launchctl kickstart gui/$UID/org.hardmute.daemon",
            "HardMute daemon",
        ] {
            assert!(help.contains(line), "{line:?} missing from --help");
        }
    }

    #[test]
    fn man_pages_cover_every_visible_subcommand() {
        let dir = tempfile::tempdir().unwrap();
        let pages = man_pages(dir.path()).unwrap();
        let names: Vec<String> = pages
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for page in [
            "hardmute.1",
            "hardmute-status.1",
            "hardmute-is-muted.1",
            "hardmute-set-hotkey.1",
        ] {
            assert!(names.iter().any(|n| n == page), "{page} not in {names:?}");
        }
        assert!(!names.iter().any(|n| n.contains("man-pages")), "{names:?}");
        let top = std::fs::read_to_string(dir.path().join("hardmute.1")).unwrap();
        assert!(top.contains(".TH hardmute 1"), "{top}");
        assert!(top.contains("is\\-muted"), "{top}");
        let sub = std::fs::read_to_string(dir.path().join("hardmute-set-hotkey.1")).unwrap();
        assert!(sub.contains("hardmute set hotkey"), "{sub}");
    }
}
