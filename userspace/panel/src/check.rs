//! "Check protection": the panel runs `hardmute check --json` and shows its table.
//!
//! Design: one source of truth for the routes. `hardmute check` (userspace/cli/src/check.rs)
//! decides which routes exist on this OS and tries them (on Linux by recording through each with
//! `parecord`/`pw-record` for ~0.3 s while muted, and reading the graph with `pw-dump`). The panel
//! runs that very program as a child process, on a thread of its own, and parses its `--json`
//! report: no second copy of the route list to drift, the recorders' child processes stay out of
//! the panel process, and the panel's UI thread and mute commands never wait for a check. The
//! panel adds only what a click can do: the one-click fix where one exists (the default input:
//! hardmuted's `protect_default`, the same request as `hardmute protect`).

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Overrides where the `hardmute` program is (tests, unusual installs).
pub const CLI_ENV: &str = "HARDMUTE_CLI";

/// A route's verdict, as `hardmute check --json` writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Open,
    Closed,
    Unknown,
}

/// One row of the report.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Route {
    pub route: String,
    pub status: Verdict,
    pub detail: String,
    pub fix: String,
}

/// `hardmute check --json`'s report.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Report {
    pub muted: bool,
    pub routes: Vec<Route>,
    pub open: usize,
}

/// What a click on a row's button does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OneClickFix {
    /// Make the HardMute Microphone the default input again (`protect_default`).
    ProtectDefault,
}

impl Route {
    /// The fix the panel can apply itself, if any (only for an OPEN route).
    pub fn one_click_fix(&self) -> Option<OneClickFix> {
        (self.status == Verdict::Open && self.route == "default input")
            .then_some(OneClickFix::ProtectDefault)
    }
}

/// The `hardmute` program: `$HARDMUTE_CLI`, else the one installed beside this panel, else
/// `hardmute` on the PATH.
pub fn cli_program() -> PathBuf {
    if let Some(path) = std::env::var_os(CLI_ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let name = format!("hardmute{}", std::env::consts::EXE_SUFFIX);
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(&name)))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// Reads `hardmute check --json`'s output. Exit status 4 (a route is open) still carries the
/// report; an error is `{"error":{"kind":..,"message":..}}`.
pub fn parse_output(stdout: &str) -> Result<Report, String> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .ok_or("hardmute check printed nothing")?;
    if let Ok(report) = serde_json::from_str::<Report>(line) {
        return Ok(report);
    }
    #[derive(Deserialize)]
    struct ErrorLine {
        error: ErrorBody,
    }
    #[derive(Deserialize)]
    struct ErrorBody {
        message: String,
    }
    match serde_json::from_str::<ErrorLine>(line) {
        Ok(e) => Err(e.error.message),
        Err(e) => Err(format!(
            "unreadable answer from hardmute check ({e}): {line}"
        )),
    }
}

/// Runs the check against the daemon at `socket` (blocks for as long as the check takes: a few
/// seconds on Linux; call it off the UI thread).
pub fn run(program: &Path, socket: &Path) -> Result<Report, String> {
    let output = Command::new(program)
        .arg("--socket")
        .arg(socket)
        .args(["--json", "check"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    parse_output(&String::from_utf8_lossy(&output.stdout))
}

/// The sentence above the table.
pub fn summary(report: &Report) -> String {
    let muted = if report.muted {
        ""
    } else {
        " HardMute is LIVE, so nothing was recorded: mute and check again for the full test."
    };
    match report.open {
        0 => format!("No open route found.{muted}"),
        1 => format!("1 route is OPEN: an app can hear the room while muted.{muted}"),
        n => format!("{n} routes are OPEN: apps can hear the room while muted.{muted}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN: &str = r#"{"muted":true,"routes":[{"route":"default input","status":"open","detail":"the default input is alsa_input.usb: apps that record the default hear the room","fix":"run `hardmute protect` (makes HardMute the default input again)"},{"route":"apps recording a physical mic now","status":"closed","detail":"none","fix":""},{"route":"guard (apps kept off the physical mic)","status":"unknown","detail":"not built on this OS","fix":"see docs/threat-model.md (routes table)"}],"open":1}"#;

    #[test]
    fn reads_the_clis_report_and_offers_the_one_click_fix_only_where_it_exists() {
        let report = parse_output(&format!("{OPEN}\n")).unwrap();
        assert!(report.muted);
        assert_eq!(report.open, 1);
        assert_eq!(report.routes.len(), 3);
        assert_eq!(report.routes[0].status, Verdict::Open);
        assert_eq!(
            report.routes[0].one_click_fix(),
            Some(OneClickFix::ProtectDefault)
        );
        assert_eq!(report.routes[1].one_click_fix(), None, "closed");
        assert_eq!(report.routes[2].status, Verdict::Unknown);
        assert_eq!(report.routes[2].one_click_fix(), None);
        assert_eq!(
            summary(&report),
            "1 route is OPEN: an app can hear the room while muted."
        );
    }

    #[test]
    fn an_error_or_garbage_is_said_not_shown_as_a_table() {
        let err = parse_output(
            r#"{"error":{"kind":"not_running","message":"hardmuted is not running"}}"#,
        )
        .unwrap_err();
        assert_eq!(err, "hardmuted is not running");
        assert!(parse_output("").unwrap_err().contains("nothing"));
        assert!(parse_output("Segmentation fault")
            .unwrap_err()
            .contains("unreadable"));
    }

    #[test]
    fn a_live_check_says_recordings_were_not_tried() {
        let report = Report {
            muted: false,
            routes: vec![],
            open: 0,
        };
        assert!(summary(&report).contains("mute and check again"));
    }

    #[test]
    fn a_missing_program_is_a_clear_error() {
        let err = run(
            Path::new("/nonexistent/hardmute"),
            Path::new("/nonexistent.sock"),
        )
        .unwrap_err();
        assert!(err.starts_with("cannot run /nonexistent/hardmute"), "{err}");
    }
}
