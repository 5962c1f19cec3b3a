//! `hardmute leak-test`: the attack from "Are You Really Muted?" (Yang et al., PETS 2022), run
//! against HardMute.
//!
//! A synthetic room ([`activity`]) is played into the physical mic path. For each condition
//! ([`sim::Condition`]) a fake app records what it receives while the user believes they are
//! muted, computes the telemetry it could send home ([`telemetry`]) and an attacker classifies
//! the room's activity from it ([`classify`], grouped cross-validation), and compares buffer
//! timing across activities (two-sample KS tests).
//!
//! Pass criteria: under HardMute (b) every level report is bit-identical across activities,
//! accuracy lies inside the binomial interval of chance, and no timing distribution differs;
//! the app-level mute (a) and both positive controls (c, d) are classified far above chance,
//! which proves the test could see a leak if there were one.

pub mod activity;
pub mod backend;
pub mod classify;
pub mod cli;
pub mod report;
pub mod sim;
pub mod telemetry;

use activity::{synthesize, Activity, Clip};
use backend::Backend;
use classify::{
    binomial_interval, clip_permutation_test, cross_validate, fold_of, ks_two_sample, CvResult,
    Dataset, KsResult,
};
use sim::Condition;
use telemetry::{Telemetry, TelemetryConfig, LEVEL_FEATURES, N_FEATURES};

/// Everything that defines a run. Two runs with the same config give the same result on the
/// simulated backend, bit for bit.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub seed: u64,
    pub clips_per_class: usize,
    pub clip_secs: f32,
    pub folds: usize,
    pub telemetry: TelemetryConfig,
    pub sim: sim::SimConfig,
    /// Classify reports aggregated over this many windows (the paper's per-minute reports
    /// with 1 s windows and 60); `None` classifies every window.
    pub aggregate_windows: Option<usize>,
    /// Level of the chance interval (two-sided).
    pub confidence: f64,
    /// Significance level of the timing test (clip-permutation calibrated KS, family-wise).
    pub ks_alpha: f64,
    /// Label permutations for the timing test.
    pub permutations: usize,
    /// "Far above chance": a leaking condition must reach at least this accuracy, and exceed
    /// the upper end of the chance interval.
    pub min_leak_accuracy: f64,
}

impl RunConfig {
    /// For CI and the unit tests: 7 activities x 8 clips x 6 s.
    pub fn short() -> Self {
        RunConfig {
            seed: 0x4841_5244_4d55_5445, // "HARDMUTE"
            clips_per_class: 8,
            clip_secs: 6.0,
            folds: 4,
            telemetry: TelemetryConfig::default(),
            sim: sim::SimConfig::default(),
            aggregate_windows: None,
            confidence: 0.99,
            ks_alpha: 0.01,
            permutations: 999,
            min_leak_accuracy: 0.5,
        }
    }

    /// Sets the false-alarm level of (b)'s statistical checks: the chance interval at
    /// `1 - alpha`, the timing test at `alpha` (split over its two families). The permutation
    /// count is raised so that the smallest reachable p-value, 1 / (permutations + 1), is at
    /// most a quarter of the per-family level: otherwise a strict alpha could never be met
    /// and the positive control (d) would be reported as undetected.
    pub fn set_alpha(&mut self, alpha: f64) -> Result<(), String> {
        if !(alpha > 0.0 && alpha < 0.5) {
            return Err(format!("--alpha must be in (0, 0.5), got {alpha}"));
        }
        self.confidence = 1.0 - alpha;
        self.ks_alpha = alpha;
        let needed = (8.0 / alpha).ceil() as usize - 1;
        self.permutations = self.permutations.max(needed);
        Ok(())
    }

    /// The full run: 7 activities x 20 clips x 30 s.
    pub fn full() -> Self {
        RunConfig {
            clips_per_class: 20,
            clip_secs: 30.0,
            folds: 5,
            ..RunConfig::short()
        }
    }

    pub fn classes(&self) -> usize {
        Activity::ALL.len()
    }
}

/// Builds the data set: `clips_per_class` clips of each activity. Clip ids are
/// `class * clips_per_class + index`.
pub fn make_clips(cfg: &RunConfig) -> Vec<Clip> {
    let mut clips = Vec::new();
    for a in Activity::ALL {
        for i in 0..cfg.clips_per_class {
            let id = a.index() * cfg.clips_per_class + i;
            clips.push(synthesize(a, i, id, cfg.clip_secs, cfg.sim.rate, cfg.seed));
        }
    }
    clips
}

/// One window's report as recorded for the analysis.
#[derive(Clone, Debug)]
pub struct WindowRecord {
    pub class: usize,
    pub clip: usize,
    pub telemetry: Telemetry,
}

/// Whether every report is the same bit pattern, and if not, the first difference.
#[derive(Clone, Debug)]
pub struct IdentityCheck {
    /// The level part (what the paper's telemetry carries) is bit-identical everywhere.
    pub level_identical: bool,
    /// The whole report, timing included, is bit-identical everywhere.
    pub all_identical: bool,
    pub first_difference: Option<String>,
}

#[derive(Clone, Debug)]
pub struct KsPair {
    pub a: usize,
    pub b: usize,
    pub intervals: KsResult,
    pub sizes: KsResult,
}

#[derive(Clone, Debug)]
pub struct ConditionResult {
    pub condition: Condition,
    /// Which backend produced the audio ("simulated", "linux-pipewire").
    pub backend: String,
    pub windows: Vec<WindowRecord>,
    pub cv: CvResult,
    pub chance: f64,
    pub chance_interval: (f64, f64),
    pub identity: IdentityCheck,
    /// Pairwise KS on pooled values, for information: these p-values assume independent
    /// intervals, which a busy machine breaks; the verdict uses `timing_p`.
    pub ks: Vec<KsPair>,
    /// Largest pairwise KS D (intervals or sizes) and its clip-permutation p-value.
    pub timing_d: f64,
    pub timing_p: f64,
    /// Per class: every inter-arrival interval (µs), for the plots.
    pub intervals_us: Vec<Vec<f64>>,
    pub passed: bool,
    /// Why it passed or failed, one line per criterion.
    pub evidence: Vec<String>,
}

impl ConditionResult {
    pub fn min_ks_p(&self) -> f64 {
        self.ks
            .iter()
            .flat_map(|k| [k.intervals.p, k.sizes.p])
            .fold(1.0, f64::min)
    }
}

/// The outcome of a whole run.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub config: RunConfig,
    pub results: Vec<ConditionResult>,
}

/// How the run ended, for the process exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// HardMute leaked nothing and the controls proved the test could have seen it.
    Pass,
    /// HardMute leaked: the evidence is in the report.
    Leak,
    /// A positive control (or the app-level mute) was not detected: the test has no power and
    /// proves nothing.
    NoPower,
}

impl Verdict {
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Pass => 0,
            Verdict::Leak => 1,
            Verdict::NoPower => 2,
        }
    }
}

impl Outcome {
    pub fn verdict(&self) -> Verdict {
        if self
            .results
            .iter()
            .any(|r| r.condition.must_not_leak() && !r.passed)
        {
            Verdict::Leak
        } else if self.results.iter().any(|r| !r.passed) {
            Verdict::NoPower
        } else {
            Verdict::Pass
        }
    }

    pub fn result(&self, c: Condition) -> Option<&ConditionResult> {
        self.results.iter().find(|r| r.condition == c)
    }
}

/// Runs every condition: the backend provides what it can, the simulated path the rest.
pub fn run(cfg: &RunConfig, backend: &mut dyn Backend) -> Result<Outcome, String> {
    let clips = make_clips(cfg);
    let mut sim = backend::Simulated::new(cfg.sim);
    let mut results = Vec::new();
    for condition in Condition::ALL {
        let (b, name): (&mut dyn Backend, String) = if backend.supports(condition) {
            let name = backend.name();
            (&mut *backend, name)
        } else {
            (&mut sim, "simulated".to_string())
        };
        log::info!(
            "{}: {} clips on the {} backend",
            condition.tag(),
            clips.len(),
            name
        );
        let captures = b.capture_all(condition, &clips)?;
        let deterministic = b.timing_is_deterministic();
        results.push(evaluate(
            cfg,
            condition,
            name,
            &clips,
            &captures,
            deterministic,
        )?);
    }
    Ok(Outcome {
        config: cfg.clone(),
        results,
    })
}

/// Telemetry, classification, identity and timing tests for one condition's captures.
pub fn evaluate(
    cfg: &RunConfig,
    condition: Condition,
    backend: String,
    clips: &[Clip],
    captures: &[sim::AppCapture],
    timing_deterministic: bool,
) -> Result<ConditionResult, String> {
    let k = cfg.classes();
    let mut windows = Vec::new();
    let mut data = Dataset {
        n_classes: k,
        ..Default::default()
    };
    let mut intervals_us = vec![Vec::new(); k];
    let mut sizes = vec![Vec::new(); k];
    let mut clip_intervals = Vec::new();
    let mut clip_sizes = Vec::new();
    for (clip, cap) in clips.iter().zip(captures) {
        let class = clip.activity.index();
        let tel = telemetry::windows(cap, cfg.telemetry);
        let rows: Vec<Vec<f64>> = tel.iter().map(telemetry::attacker_features).collect();
        let rows = match cfg.aggregate_windows {
            Some(n) => telemetry::aggregate(&rows, n),
            None => rows,
        };
        for row in rows {
            data.x.push(row);
            data.y.push(class as u32);
            data.group.push(clip.id);
        }
        windows.extend(tel.into_iter().map(|t| WindowRecord {
            class,
            clip: clip.id,
            telemetry: t,
        }));
        let iv: Vec<f64> = cap
            .arrivals_ns
            .windows(2)
            .map(|w| (w[1] as f64 - w[0] as f64) / 1000.0)
            .collect();
        let sz: Vec<f64> = cap.frames.iter().skip(1).map(|&f| f as f64).collect();
        intervals_us[class].extend_from_slice(&iv);
        sizes[class].extend_from_slice(&sz);
        clip_intervals.push((class, iv));
        clip_sizes.push((class, sz));
    }
    if data.y.is_empty() {
        return Err(format!(
            "{}: no whole reports (clips shorter than a window or an aggregation group?)",
            condition.tag()
        ));
    }
    let per_class = cfg.clips_per_class;
    let folds = cfg.folds;
    let fold = move |g: usize| fold_of(g % per_class, folds);
    let cv = cross_validate(&data, &fold, folds, cfg.seed)?;
    let chance = 1.0 / k as f64;
    // Reports from one clip are not independent; the interval counts clips, not reports,
    // which makes it wider (harder to call a leak from noise, easier to pass). The identity
    // check has no such slack.
    let chance_interval = binomial_interval(cv.clips, chance, cfg.confidence);

    let identity = identity_check(&windows);
    let mut ks = Vec::new();
    for a in 0..k {
        for b in a + 1..k {
            ks.push(KsPair {
                a,
                b,
                intervals: ks_two_sample(&intervals_us[a], &intervals_us[b]),
                sizes: ks_two_sample(&sizes[a], &sizes[b]),
            });
        }
    }
    let (d_iv, p_iv) = clip_permutation_test(&clip_intervals, k, cfg.permutations, cfg.seed);
    let (d_sz, p_sz) = clip_permutation_test(&clip_sizes, k, cfg.permutations, cfg.seed ^ 1);
    let (timing_d, timing_p) = if p_iv <= p_sz {
        (d_iv, p_iv)
    } else {
        (d_sz, p_sz)
    };
    let mut r = ConditionResult {
        condition,
        backend,
        windows,
        cv,
        chance,
        chance_interval,
        identity,
        ks,
        timing_d,
        timing_p,
        intervals_us,
        passed: false,
        evidence: Vec::new(),
    };
    judge(cfg, &mut r, timing_deterministic);
    Ok(r)
}

/// A confidence level as a percentage for people: 0.99 -> "99", 0.999 -> "99.9".
pub fn percent(level: f64) -> String {
    let tenths = (level * 1000.0).round() as i64;
    if tenths % 10 == 0 {
        format!("{}", tenths / 10)
    } else {
        format!("{}.{}", tenths / 10, tenths % 10)
    }
}

fn identity_check(windows: &[WindowRecord]) -> IdentityCheck {
    let Some(first) = windows.first() else {
        return IdentityCheck {
            level_identical: true,
            all_identical: true,
            first_difference: None,
        };
    };
    let nl = LEVEL_FEATURES.len();
    let mut level_identical = true;
    let mut all_identical = true;
    let mut first_difference = None;
    for w in windows {
        let level_same = w.telemetry.bits_equal(&first.telemetry, 0..nl);
        let all_same = level_same && w.telemetry.bits_equal(&first.telemetry, 0..N_FEATURES);
        if !all_same && first_difference.is_none() {
            let f = (0..N_FEATURES)
                .find(|&f| w.telemetry.0[f].to_bits() != first.telemetry.0[f].to_bits())
                .unwrap_or(0);
            first_difference = Some(format!(
                "{} (clip {}) reports {} = {} where {} (clip {}) reports {}",
                Activity::ALL[w.class].name(),
                w.clip,
                telemetry::feature_name(f),
                w.telemetry.0[f],
                Activity::ALL[first.class].name(),
                first.clip,
                first.telemetry.0[f],
            ));
        }
        level_identical &= level_same;
        all_identical &= all_same;
    }
    IdentityCheck {
        level_identical,
        all_identical,
        first_difference,
    }
}

fn judge(cfg: &RunConfig, r: &mut ConditionResult, timing_deterministic: bool) {
    let (lo, hi) = r.chance_interval;
    let acc = r.cv.accuracy;
    let min_p = r.min_ks_p();
    let mut ok = true;
    let mut ev = Vec::new();
    let mut check = |cond: bool, text: String| {
        ev.push(format!("{} {}", if cond { "ok:  " } else { "FAIL:" }, text));
        ok &= cond;
    };
    let pair_d = |k: &KsPair| k.intervals.d.max(k.sizes.d);
    let worst_pair =
        r.ks.iter()
            .max_by(|x, y| pair_d(x).total_cmp(&pair_d(y)))
            .filter(|k| pair_d(k) > 0.0)
            .map(|k| {
                format!(
                    "{} vs {}",
                    Activity::ALL[k.a].name(),
                    Activity::ALL[k.b].name()
                )
            })
            .unwrap_or_else(|| "every pair".into());
    // Two families (intervals, sizes); the smaller p is compared with alpha / 2.
    let timing_alpha = cfg.ks_alpha / 2.0;
    let timing_text = format!(
        "largest KS D = {:.4} ({worst_pair}), clip-permutation p = {:.4} vs {timing_alpha} \
         ({} permutations); the i.i.d. KS p would be {min_p:.1e}",
        r.timing_d, r.timing_p, cfg.permutations
    );
    if r.condition.must_not_leak() {
        let identical = if timing_deterministic {
            r.identity.all_identical
        } else {
            r.identity.level_identical
        };
        let difference = r
            .identity
            .first_difference
            .as_ref()
            .filter(|_| !identical)
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        check(
            identical,
            format!(
                "every {} report bit-identical across all activities ({} reports){difference}",
                if timing_deterministic {
                    "telemetry"
                } else {
                    "level"
                },
                r.windows.len(),
            ),
        );
        check(
            acc >= lo && acc <= hi,
            format!(
                "accuracy {acc:.3} inside the {}% interval of chance [{lo:.3}, {hi:.3}] (chance {:.3})",
                percent(cfg.confidence),
                r.chance
            ),
        );
        check(
            r.timing_p > timing_alpha,
            format!("timing indistinguishable: {timing_text}"),
        );
    } else {
        let floor = hi.max(cfg.min_leak_accuracy);
        check(
            acc > floor,
            format!(
                "classified far above chance: accuracy {acc:.3} > {floor:.3} (chance {:.3}, {}% interval up to {hi:.3}); per clip {:.3}",
                r.chance,
                percent(cfg.confidence),
                r.cv.clip_accuracy
            ),
        );
        if r.condition == Condition::PreGateProcessing {
            check(
                r.timing_p <= timing_alpha,
                format!("the timing test sees the leak: {timing_text}"),
            );
        }
    }
    r.passed = ok;
    r.evidence = ev;
}

#[cfg(test)]
mod alpha_tests {
    use super::*;

    #[test]
    fn a_strict_alpha_tightens_both_checks_and_stays_reachable() {
        let mut cfg = RunConfig::short();
        cfg.set_alpha(0.001).unwrap();
        assert_eq!(cfg.confidence, 0.999);
        assert_eq!(cfg.ks_alpha, 0.001);
        // The smallest p the permutation test can return must be below the per-family level.
        let smallest_p = 1.0 / (cfg.permutations + 1) as f64;
        assert!(smallest_p <= cfg.ks_alpha / 2.0 / 4.0, "{smallest_p}");
        // ... and a consistent timing difference really reaches it: every clip of a class is
        // shifted by the same small amount (overlapping ranges, D of about 0.15), which only
        // the true labelling lines up.
        let clips: Vec<(usize, Vec<f64>)> = (0..28)
            .map(|i| {
                let class = i % 7;
                let shift = class as f64 * 0.5;
                (class, (0..20).map(|j| j as f64 + shift).collect())
            })
            .collect();
        let (d, p) = classify::clip_permutation_test(&clips, 7, cfg.permutations, 1);
        assert!(d > 0.1 && p <= cfg.ks_alpha / 2.0, "d {d} p {p}");
        // A looser alpha never lowers the permutation count below the default.
        let mut loose = RunConfig::short();
        loose.set_alpha(0.05).unwrap();
        assert_eq!(loose.permutations, RunConfig::short().permutations);
    }

    #[test]
    fn confidence_levels_print_as_people_write_them() {
        assert_eq!(percent(0.99), "99");
        assert_eq!(percent(0.999), "99.9");
        assert_eq!(percent(1.0 - 0.001), "99.9");
        assert_eq!(percent(0.95), "95");
    }

    #[test]
    fn a_meaningless_alpha_is_refused() {
        for bad in [0.0, -0.1, 0.5, 0.9, f64::NAN] {
            assert!(RunConfig::short().set_alpha(bad).is_err(), "{bad}");
        }
    }
}
