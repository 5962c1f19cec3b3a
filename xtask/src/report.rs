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
}

#[derive(Debug, Default)]
pub struct Report {
    pub rows: Vec<Row>,
}

impl Report {
    /// Runs one step, timing it and recording its outcome; a failure is kept (with its whole
    /// error chain) and the run goes on so the table shows everything that is broken.
    pub fn step(&mut self, stage: &str, target: &str, f: impl FnOnce() -> anyhow::Result<()>) {
        eprintln!("\n=== cross-check {stage} [{target}]");
        let start = Instant::now();
        let outcome = match f() {
            Ok(()) => Outcome::Passed,
            Err(e) => {
                eprintln!("FAILED {stage} [{target}]: {e:#}");
                Outcome::Failed(format!("{e:#}"))
            }
        };
        self.rows.push(Row {
            stage: stage.to_owned(),
            target: target.to_owned(),
            outcome,
            elapsed: start.elapsed(),
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
            let _ = writeln!(
                out,
                "{:<stage_w$}  {:<target_w$}  {:<6}  {:>8.1}",
                r.stage,
                r.target,
                result,
                r.elapsed.as_secs_f64()
            );
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
    fn all_passed_only_when_every_row_passed() {
        let mut report = Report::default();
        report.step("a", "t", || Ok(()));
        assert!(report.all_passed());
        report.step("b", "t", || anyhow::bail!("x"));
        assert!(!report.all_passed());
    }
}
