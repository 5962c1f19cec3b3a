//! Realtime safety of the per-cycle function the filter's process callback calls
//! (`RtGate::process`): a counting global allocator sees no allocation or free across many
//! cycles with mute toggling, missing inputs and missing outputs. The same cycles also check
//! the gate's output: exact zeros while muted or without input, the input once unmuted; and the
//! level it publishes for the meter (metered in the same cycle): exactly 0 while muted, the
//! signal's level while live.

use hardmute_pipewire::rt::{LevelTap, RtGate};
use hardmute_pipewire::{ChangeSource, ControlBlock};
use std::sync::Arc;

#[global_allocator]
static GLOBAL: hardmute_alloc_counter::CountingAllocator =
    hardmute_alloc_counter::CountingAllocator;

fn set_muted(ctl: &ControlBlock, muted: bool) {
    ctl.set_muted(
        muted,
        ChangeSource::Cli,
        hardmute_pipewire::Authority::Owner,
    )
    .unwrap();
}

#[test]
fn process_cycle_allocates_nothing_and_gates_exactly() {
    const FRAMES: usize = 1024;
    let ctl = ControlBlock::new(false);
    let mut rt = RtGate::new(2, 48_000, hardmute_core::gate::DEFAULT_FADE_MS);
    let left: Vec<f32> = (0..FRAMES)
        .map(|i| ((i as f32) * 0.01).sin() * 0.5 + 0.25)
        .collect();
    let right: Vec<f32> = (0..FRAMES)
        .map(|i| ((i as f32) * 0.02).cos() * 0.5 - 0.25)
        .collect();
    let mut out_l = vec![1.0f32; FRAMES];
    let mut out_r = vec![1.0f32; FRAMES];
    let mut passed_cycles = 0;
    let (mut muted_windows, mut live_windows) = (0, 0);

    let before = hardmute_alloc_counter::heap_ops_on_this_thread();
    for cycle in 0..2000 {
        // Mute changes happen between cycles, as set_hard_mute guarantees.
        match cycle % 40 {
            0 => set_muted(&ctl, true),
            20 => set_muted(&ctl, false),
            _ => {}
        }
        let no_input = cycle % 7 == 3;
        let inputs: [Option<&[f32]>; 2] = if no_input {
            [None, None]
        } else {
            [Some(&left), Some(&right)]
        };
        {
            let mut outputs: [Option<&mut [f32]>; 2] = [Some(&mut out_l), Some(&mut out_r)];
            rt.process(&ctl, &inputs, &mut outputs, FRAMES);
        }
        if ctl.is_muted() || no_input {
            assert!(
                out_l.iter().chain(out_r.iter()).all(|&s| s == 0.0),
                "cycle {cycle}: not exact zeros"
            );
        } else if cycle % 40 > 22 {
            // Well after the unmute (past any fade-in): the input, channel for channel.
            assert_eq!(out_l, left, "cycle {cycle}: left");
            assert_eq!(out_r, right, "cycle {cycle}: right");
            passed_cycles += 1;
        }
        // The published level (a window is 2400 frames, an iteration 1536): from the third
        // muted iteration on every window is all muted cycles, and must be exactly 0; well
        // into the live stretch every window holds signal (peak ~0.75, RMS ~0.4).
        let level = rt.level_tap().read();
        if (3..20).contains(&(cycle % 40)) {
            assert_eq!(
                (level.peak, level.rms),
                (0.0, 0.0),
                "cycle {cycle}: level while muted"
            );
            muted_windows += 1;
        } else if cycle % 40 > 24 {
            assert!(
                level.peak > 0.5 && level.rms > 0.1 && level.peak <= 1.0,
                "cycle {cycle}: level while live {level:?}"
            );
            live_windows += 1;
        }
        // A cycle where one output port has no buffer must not disturb anything either.
        let mut outputs: [Option<&mut [f32]>; 2] = [None, Some(&mut out_r)];
        rt.process(&ctl, &inputs, &mut outputs, FRAMES / 2);
    }
    assert_eq!(
        hardmute_alloc_counter::heap_ops_on_this_thread() - before,
        0,
        "the realtime cycle allocated or freed"
    );
    assert!(
        passed_cycles > 100,
        "the passthrough branch was exercised ({passed_cycles})"
    );
    assert!(muted_windows > 100 && live_windows > 100);
    assert!(
        rt.level_tap().read().windows > 2000 * 1536 / 2400 - 2,
        "a window every 50 ms of audio"
    );
}

#[test]
fn level_of_a_known_signal_and_the_tap_survives_a_rebuilt_gate() {
    let tap = Arc::new(LevelTap::new());
    let ctl = ControlBlock::new(false);
    // A square wave of +-0.5: peak 0.5, RMS 0.5; after the fade-in (5 ms) every window is exact.
    let square: Vec<f32> = (0..2400)
        .map(|i| if i % 2 == 0 { 0.5 } else { -0.5 })
        .collect();
    let mut out = vec![0.0f32; 2400];
    let mut rt = RtGate::with_level_tap(1, 48_000, 5, tap.clone());
    for _ in 0..3 {
        rt.process(&ctl, &[Some(&square)], &mut [Some(&mut out)], 2400);
    }
    let level = tap.read();
    assert_eq!(
        level.windows, 3,
        "one 50 ms window per 2400 frames at 48 kHz"
    );
    assert_eq!(level.peak, 0.5);
    assert!((level.rms - 0.5).abs() < 1e-6, "{level:?}");
    // A quieter signal through a gate rebuilt (new channel layout) on the same tap.
    let quiet: Vec<f32> = square.iter().map(|s| s * 0.1).collect();
    let mut rt = RtGate::with_level_tap(2, 48_000, 5, tap.clone());
    let mut out2 = vec![0.0f32; 2400];
    for _ in 0..2 {
        rt.process(
            &ctl,
            &[Some(&quiet), Some(&quiet)],
            &mut [Some(&mut out), Some(&mut out2)],
            2400,
        );
    }
    let level = tap.read();
    assert_eq!(level.windows, 5);
    assert!(
        (level.peak - 0.05).abs() < 1e-6 && (level.rms - 0.05).abs() < 1e-6,
        "{level:?}"
    );
    // Muted: the next window is exactly 0, although the input still plays.
    set_muted(&ctl, true);
    rt.process(
        &ctl,
        &[Some(&quiet), Some(&quiet)],
        &mut [Some(&mut out), Some(&mut out2)],
        2400,
    );
    assert_eq!((tap.read().peak, tap.read().rms), (0.0, 0.0));
}

#[test]
fn partial_input_zero_fills_the_missing_channel() {
    let ctl = ControlBlock::new(false);
    let mut rt = RtGate::new(2, 48_000, hardmute_core::gate::DEFAULT_FADE_MS);
    let left = vec![0.5f32; 4800];
    let (mut out_l, mut out_r) = (vec![9.0f32; 4800], vec![9.0f32; 4800]);
    for _ in 0..3 {
        let mut outputs: [Option<&mut [f32]>; 2] = [Some(&mut out_l), Some(&mut out_r)];
        rt.process(&ctl, &[Some(&left), None], &mut outputs, 4800);
    }
    assert_eq!(out_l, left);
    assert!(out_r.iter().all(|&s| s == 0.0));
}
