//! Realtime safety of the per-cycle function the filter's process callback calls
//! (`RtGate::process`): a counting global allocator sees no allocation or free across many
//! cycles with mute toggling, missing inputs and missing outputs. The same cycles also check
//! the gate's output: exact zeros while muted or without input, the input once unmuted.

use hardmute_pipewire::rt::RtGate;
use hardmute_pipewire::{ChangeSource, ControlBlock};

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
