//! The summary every `cross-check` run ends with: one row per (stage, target).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed(String),
    /// Nothing to verify (e.g. no crate claims a target yet); shown, never counted as a pass.
    Skipped(String),
}

#[derive(Debug, Clone)]
pub struct Row {
    pub stage: String,
    pub target: String,
    pub outcome: Outcome,
    pub elapsed: Duration,
    /// What a passing step counted (e.g. test results), shown after the time.
    pub note: Option<String>,
}

#[derive(Debug, Default)]
pub struct Report {
    pub rows: Vec<Row>,
}

impl Report {
    /// Runs one step, timing it and recording its outcome; a failure is kept (with its whole
    /// error chain) and the run goes on so the table shows everything that is broken.
    pub fn step(&mut self, stage: &str, target: &str, f: impl FnOnce() -> anyhow::Result<()>) {
        self.step_noted(stage, target, || f().map(|()| None));
    }

    /// [`Report::step`] for a step that has something to show in its row (test counts).
    pub fn step_noted(
        &mut self,
        stage: &str,
        target: &str,
        f: impl FnOnce() -> anyhow::Result<Option<String>>,
    ) {
        eprintln!("\n=== cross-check {stage} [{target}]");
        let start = Instant::now();
        let (outcome, note) = match f() {
            Ok(note) => (Outcome::Passed, note),
            Err(e) => {
                eprintln!("FAILED {stage} [{target}]: {e:#}");
                (Outcome::Failed(format!("{e:#}")), None)
            }
        };
        self.rows.push(Row {
            stage: stage.to_owned(),
            target: target.to_owned(),
            outcome,
            elapsed: start.elapsed(),
            note,
        });
    }

    pub fn all_passed(&self) -> bool {
        !self
            .rows
            .iter()
            .any(|r| matches!(r.outcome, Outcome::Failed(_)))
    }

    /// Records a row for something there was nothing to run for, with the reason.
    pub fn skip(&mut self, stage: &str, target: &str, reason: &str) {
        eprintln!("\n=== cross-check {stage} [{target}]: skipped, {reason}");
        self.rows.push(Row {
            stage: stage.to_owned(),
            target: target.to_owned(),
            outcome: Outcome::Skipped(reason.to_owned()),
            elapsed: Duration::ZERO,
            note: None,
        });
    }

    pub fn table(&self) -> String {
        let stage_w = self
            .rows
            .iter()
            .map(|r| r.stage.len())
            .max()
            .unwrap_or(0)
            .max(5);
        let target_w = self
            .rows
            .iter()
            .map(|r| r.target.len())
            .max()
            .unwrap_or(0)
            .max(6);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<stage_w$}  {:<target_w$}  {:<6}  {:>8}",
            "stage", "target", "result", "seconds"
        );
        let _ = writeln!(out, "{}", "-".repeat(stage_w + target_w + 6 + 8 + 6));
        for r in &self.rows {
            let result = match r.outcome {
                Outcome::Passed => "ok",
                Outcome::Failed(_) => "FAILED",
                Outcome::Skipped(_) => "skip",
            };
            let _ = write!(
                out,
                "{:<stage_w$}  {:<target_w$}  {:<6}  {:>8.1}",
                r.stage,
                r.target,
                result,
                r.elapsed.as_secs_f64()
            );
            match &r.note {
                Some(note) => {
                    let _ = writeln!(out, "  {note}");
                }
                None => out.push('\n'),
            }
        }
        let total = self
            .rows
            .iter()
            .fold(0.0, |sum, r| sum + r.elapsed.as_secs_f64());
        let count = |f: fn(&Outcome) -> bool| self.rows.iter().filter(|r| f(&r.outcome)).count();
        let passed = count(|o| *o == Outcome::Passed);
        let failed = count(|o| matches!(o, Outcome::Failed(_)));
        let skipped = count(|o| matches!(o, Outcome::Skipped(_)));
        let _ = writeln!(out, "total {total:.1} s");
        // The plain closing line CI log readers recognise.
        let _ = write!(out, "cross-check: {passed} passed, {failed} failed");
        if skipped > 0 {
            let _ = write!(out, ", {skipped} skipped");
        }
        out.push('\n');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_recorded_and_the_run_continues() {
        let mut report = Report::default();
        report.step("core", "x86_64-pc-windows-msvc", || Ok(()));
        report.step("core", "aarch64-apple-darwin", || {
            Err(anyhow::anyhow!("linker said no"))
        });
        report.step("core", "x86_64-apple-darwin", || Ok(()));
        assert_eq!(report.rows.len(), 3);
        assert!(!report.all_passed());
        assert_eq!(
            report.rows[1].outcome,
            Outcome::Failed("linker said no".into())
        );
        let table = report.table();
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("stage"));
        assert!(lines[3].contains("aarch64-apple-darwin") && lines[3].contains("FAILED"));
        assert!(lines[2].contains(" ok "));
        assert_eq!(lines.last(), Some(&"cross-check: 2 passed, 1 failed"));
    }

    #[test]
    fn skipped_rows_are_shown_and_counted_apart() {
        let mut report = Report::default();
        report.step("core", "t", || Ok(()));
        report.skip("crates", "(none)", "no crate claims a target");
        assert!(report.all_passed());
        let table = report.table();
        assert!(table.contains("crates") && table.contains(" skip "));
        assert!(table.contains("total 0.0 s") || !table.contains("-0.0"));
        assert!(table.ends_with("cross-check: 1 passed, 0 failed, 1 skipped\n"));
    }

    #[test]
    fn notes_follow_their_row() {
        let mut report = Report::default();
        report.step_noted("windows-wine", "x86_64-pc-windows-gnu", || {
            Ok(Some("13 passed, 0 failed".into()))
        });
        report.step_noted("b", "t", || anyhow::bail!("no tests ran"));
        let table = report.table();
        let lines: Vec<&str> = table.lines().collect();
        assert!(
            lines[2].starts_with("windows-wine") && lines[2].ends_with("  13 passed, 0 failed")
        );
        assert!(lines[3].contains("FAILED") && lines[3].ends_with("0.0"));
    }

    #[test]
    fn all_passed_only_when_every_row_passed() {
        let mut report = Report::default();
        report.step("a", "t", || Ok(()));
        assert!(report.all_passed());
        report.step("b", "t", || anyhow::bail!("x"));
        assert!(!report.all_passed());
    }
}
