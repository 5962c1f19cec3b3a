//! A simulated hour across two clocks ±1000 ppm apart: no underrun, no overrun, bounded fill.
use core::sync::atomic::AtomicU32;
use hardmute_core::drift::sim::{run, PERIOD, TARGET_FILL};

fn slots() -> Vec<AtomicU32> {
    (0..16 * PERIOD).map(|_| AtomicU32::new(0)).collect()
}

fn check(ppm: f64) {
    let r = run(ppm, 3600.0, 60.0, &slots());
    eprintln!("{ppm:+} ppm: {r:?}");
    assert_eq!(r.periods, 360_000);
    assert_eq!(r.underruns, 0, "{r:?}");
    assert_eq!(r.overruns, 0, "{r:?}");
    // After the first minute the fill stays within a period and a half of the target: the
    // latency through the ring is bounded.
    assert!(r.min_fill + PERIOD * 3 / 2 >= TARGET_FILL, "{r:?}");
    assert!(r.max_fill <= TARGET_FILL + PERIOD * 3 / 2, "{r:?}");
    // The controller found the drift (the correction settles near it).
    assert!((r.final_correction - ppm * 1e-6).abs() < 1e-4, "{r:?}");
}

#[test]
fn an_hour_at_plus_1000_ppm() {
    check(1000.0);
}

#[test]
fn an_hour_at_minus_1000_ppm() {
    check(-1000.0);
}

#[test]
fn without_control_the_same_drift_fails() {
    // The sim has power: with a controller that cannot correct, +1000 ppm overruns within the hour.
    let r = hardmute_core::drift::sim::run_uncontrolled(1000.0, 3600.0, &slots());
    assert!(r.overruns > 0, "{r:?}");
}
