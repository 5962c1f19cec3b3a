//! The pass criteria of issue 7 as assertions on the short deterministic run (simulated
//! backend: the real hardmute-core delivery path in process).

use hardmute_leaktest::backend::Simulated;
use hardmute_leaktest::sim::Condition;
use hardmute_leaktest::{run, Outcome, RunConfig, Verdict};
use std::sync::OnceLock;

/// One short run shared by every test in this file (it is the expensive part).
fn outcome() -> &'static Outcome {
    static OUTCOME: OnceLock<Outcome> = OnceLock::new();
    OUTCOME.get_or_init(|| {
        let cfg = RunConfig::short();
        run(&cfg, &mut Simulated::new(cfg.sim)).expect("leak test run")
    })
}

#[test]
fn hard_mute_reports_are_bit_identical_across_activities() {
    let r = outcome().result(Condition::HardMute).unwrap();
    assert!(
        r.identity.all_identical,
        "{:?}",
        r.identity.first_difference
    );
    // And there are reports from every activity to compare.
    for class in 0..7 {
        assert!(
            r.windows.iter().any(|w| w.class == class),
            "no report for class {class}"
        );
    }
}

#[test]
fn hard_mute_accuracy_is_inside_the_chance_interval() {
    let r = outcome().result(Condition::HardMute).unwrap();
    let (lo, hi) = r.chance_interval;
    assert!(lo < r.chance && r.chance < hi);
    assert!(
        r.cv.accuracy >= lo && r.cv.accuracy <= hi,
        "accuracy {} outside [{lo}, {hi}]",
        r.cv.accuracy
    );
}

#[test]
fn hard_mute_timing_is_indistinguishable() {
    let r = outcome().result(Condition::HardMute).unwrap();
    assert_eq!(r.ks.len(), 21, "every pair of 7 activities");
    for k in &r.ks {
        // The simulated clock makes HardMute's timing exactly equal for every activity.
        assert_eq!((k.intervals.d, k.sizes.d), (0.0, 0.0), "{k:?}");
    }
    assert_eq!((r.timing_d, r.timing_p), (0.0, 1.0));
}

#[test]
fn app_level_mute_and_both_controls_are_classified_far_above_chance() {
    let o = outcome();
    for c in [
        Condition::AppLevelMute,
        Condition::Attenuate60dB,
        Condition::PreGateProcessing,
    ] {
        let r = o.result(c).unwrap();
        assert!(
            r.cv.accuracy > r.chance_interval.1 && r.cv.accuracy > 0.5,
            "{c:?}: accuracy {} (chance interval up to {})",
            r.cv.accuracy,
            r.chance_interval.1
        );
        assert!(r.passed, "{c:?}: {:?}", r.evidence);
    }
}

#[test]
fn the_timing_test_has_power_on_the_pre_gate_control() {
    let r = outcome().result(Condition::PreGateProcessing).unwrap();
    let alpha = outcome().config.ks_alpha / 2.0;
    assert!(
        r.timing_p <= alpha,
        "KS missed the timing leak: D {}, p {}",
        r.timing_d,
        r.timing_p
    );
    // The control leaks through timing only: its levels are the same zeros as HardMute's.
    assert!(r.identity.level_identical && !r.identity.all_identical);
}

#[test]
fn the_run_passes_and_folds_never_share_a_clip() {
    let o = outcome();
    assert_eq!(
        o.verdict(),
        Verdict::Pass,
        "{}",
        hardmute_leaktest::report::console(o)
    );
    let cfg = &o.config;
    // Every clip's reports are in exactly one fold: the fold is a function of the clip id.
    let r = o.result(Condition::AppLevelMute).unwrap();
    assert_eq!(r.cv.clips, 7 * cfg.clips_per_class);
    assert_eq!(
        r.cv.confusion.iter().flatten().sum::<u32>() as usize,
        r.cv.rows
    );
}

#[test]
fn a_leaking_hard_mute_fails_the_run_with_evidence() {
    // Feed the HardMute judge the attenuated path's audio: the verdict must be Leak, and the
    // evidence must name the difference.
    let cfg = RunConfig {
        clips_per_class: 4,
        clip_secs: 3.0,
        folds: 2,
        ..RunConfig::short()
    };
    let clips = hardmute_leaktest::make_clips(&cfg);
    let caps: Vec<_> = clips
        .iter()
        .map(|c| hardmute_leaktest::sim::run_clip(Condition::Attenuate60dB, c, cfg.sim))
        .collect();
    let r = hardmute_leaktest::evaluate(
        &cfg,
        Condition::HardMute,
        "leaky".into(),
        &clips,
        &caps,
        true,
    )
    .unwrap();
    assert!(!r.passed);
    assert!(!r.identity.level_identical);
    assert!(
        r.evidence
            .iter()
            .any(|e| e.starts_with("FAIL") && e.contains("reports")),
        "{:?}",
        r.evidence
    );
    let o = Outcome {
        config: cfg,
        results: vec![r],
    };
    assert_eq!(o.verdict(), Verdict::Leak);
    assert_eq!(o.verdict().exit_code(), 1);
}
