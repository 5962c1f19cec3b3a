//! Delivery: the step every driver's IO path calls to hand samples to apps. The gate runs here
//! (invariant 2), so nothing captured before a mute can reach an app after it.
//!
//! Two shapes:
//! - [`deliver_from_input`]: the bridge's samples of this very cycle (Linux: one pw_filter).
//! - [`deliver_from_ring`]: the bridge runs on another clock and fills a ring (Windows DPC, macOS
//!   ReadInput). While muted the ring keeps being consumed at the normal rate, so its fill level
//!   and the bridge's drift controller do not notice mute at all (invariant 3); what is consumed is
//!   dropped. On the first unmuted cycle everything still in the ring was captured while muted,
//!   so it is consumed as zeros too
//!   (a mute that came and went between two cycles counts: the generation tells). An underrun delivers zeros, never repeated samples.

use crate::control::ControlBlock;
use crate::gate::Gate;
use crate::ring::SampleRing;
use crate::sample::Sample;

/// Same-cycle delivery. `input == None` means no bridge data (no physical mic): zeros.
/// A short input is padded with zeros and counted as an underrun.
#[inline]
pub fn deliver_from_input<S: Sample>(
    ctl: &ControlBlock,
    gate: &mut Gate,
    input: Option<&[S]>,
    out: &mut [S],
    channels: usize,
) {
    let cycle = ctl.begin_cycle();
    let mut underrun = false;
    if !cycle.muted {
        let n = match input {
            Some(inp) => {
                let n = inp.len().min(out.len());
                out[..n].copy_from_slice(&inp[..n]);
                n
            }
            None => 0,
        };
        out[n..].fill(S::ZERO);
        underrun = n < out.len();
    }
    gate.apply(cycle.muted, out, channels);
    ctl.end_cycle(cycle, frames(out, channels), underrun);
}

/// Ring delivery; see the module docs for what happens to the ring around a mute.
#[inline]
pub fn deliver_from_ring<S: Sample, R: SampleRing>(
    ctl: &ControlBlock,
    gate: &mut Gate,
    ring: &mut R,
    out: &mut [S],
    channels: usize,
) {
    let cycle = ctl.begin_cycle();
    if !cycle.muted && (gate.is_closed() || cycle.generation != gate.generation) {
        gate.stale_samples = ring.len();
    }
    gate.generation = cycle.generation;
    let n = ring.pop_into(out);
    out[n..].fill(S::ZERO);
    let underrun = n < out.len();
    if cycle.muted {
        gate.apply(true, out, channels);
    } else {
        let stale = gate.stale_samples.min(n);
        out[..stale].fill(S::ZERO);
        gate.stale_samples -= stale;
        // The fade-in starts at the first sample captured after the unmute.
        gate.apply(false, &mut out[stale..], channels);
    }
    ctl.end_cycle(cycle, frames(out, channels), underrun);
}

#[inline]
fn frames<S>(out: &[S], channels: usize) -> u64 {
    (out.len() / channels.max(1)) as u64
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::control::{Authority, ChangeSource};
    use crate::ring::{RingHeader, SharedRing};
    use crate::sample::I24;
    use core::sync::atomic::AtomicU32;
    use proptest::prelude::*;
    use std::vec::Vec;

    fn mute(ctl: &ControlBlock, m: bool) {
        ctl.set_muted(m, ChangeSource::Cli, Authority::Owner)
            .unwrap();
        assert!(ctl.wait_until_effective(|| {}, 1));
    }

    /// Samples carry their own sequence number (exact in f32 below 2^24), so the test can tell
    /// what was captured when.
    fn seq(i: u64) -> f32 {
        (i + 1) as f32
    }

    #[test]
    fn same_cycle_path_gates_and_pads() {
        let ctl = ControlBlock::new(false);
        let mut g = Gate::new(0);
        let mut out = [9.0f32; 6];
        deliver_from_input(&ctl, &mut g, Some(&[1.0, 2.0, 3.0, 4.0]), &mut out, 2);
        assert_eq!(out, [1.0, 2.0, 3.0, 4.0, 0.0, 0.0]);
        assert_eq!(ctl.snapshot().underruns, 1);
        mute(&ctl, true);
        deliver_from_input(&ctl, &mut g, Some(&[1.0; 6]), &mut out, 2);
        assert!(out.iter().all(|x| x.to_bits() == 0));
        deliver_from_input(&ctl, &mut g, None, &mut out, 2);
        assert!(out.iter().all(|x| x.to_bits() == 0));
        let s = ctl.snapshot();
        assert_eq!((s.frames_delivered, s.frames_zeroed), (9, 6));
    }

    fn check_all_zero<S: Sample>(
        ctl: &ControlBlock,
        ring_fill: usize,
        channels: usize,
        period: usize,
    ) -> Result<(), TestCaseError> {
        let slots: Vec<AtomicU32> = (0..4096).map(|_| AtomicU32::new(0)).collect();
        let cap = 4096 / channels * channels;
        let h = RingHeader::new(cap as u32, channels as u32);
        let ring = SharedRing::attach(&h, &slots).unwrap();
        let (mut w, mut r) = (ring.writer(), ring.reader());
        let fill: Vec<f32> = (0..ring_fill * channels).map(|i| seq(i as u64)).collect();
        w.push(&fill);
        let mut g = Gate::new(64);
        let mut out: Vec<S> = std::vec![S::ZERO; period * channels];
        deliver_from_ring(ctl, &mut g, &mut r, &mut out, channels);
        mute(ctl, true);
        for _ in 0..4 {
            deliver_from_ring(ctl, &mut g, &mut r, &mut out, channels);
            prop_assert!(out.iter().all(|&s| s == S::ZERO));
        }
        Ok(())
    }

    proptest! {
        /// Invariant 1 + 2: after the mute is acknowledged, every delivered sample in every
        /// format is zero, including audio already in the ring.
        #[test]
        fn acknowledged_mute_delivers_only_zeros(
            fill in 0usize..1500, channels in 1usize..5, period in 1usize..700, fmt in 0u8..4,
        ) {
            let ctl = ControlBlock::new(false);
            match fmt {
                0 => check_all_zero::<f32>(&ctl, fill, channels, period)?,
                1 => check_all_zero::<i16>(&ctl, fill, channels, period)?,
                2 => check_all_zero::<I24>(&ctl, fill, channels, period)?,
                _ => check_all_zero::<i32>(&ctl, fill, channels, period)?,
            }
        }

        /// Random interleavings of pushes, pulls, mutes and unmutes: delivered samples are
        /// strictly increasing (no repeat, no stale), and nothing pushed before an unmute is
        /// delivered after it.
        #[test]
        fn underruns_never_repeat_and_muted_audio_never_surfaces(
            ops in proptest::collection::vec((0u8..4, 1usize..300), 1..200),
        ) {
            let slots: Vec<AtomicU32> = (0..1024).map(|_| AtomicU32::new(0)).collect();
            let h = RingHeader::new(1024, 1);
            let ring = SharedRing::attach(&h, &slots).unwrap();
            let (mut w, mut r) = (ring.writer(), ring.reader());
            let ctl = ControlBlock::new(false);
            let mut g = Gate::new(0);
            let (mut next, mut last, mut first_after_unmute) = (0u64, 0.0f32, 0.0f32);
            let mut out = std::vec![0.0f32; 300];
            for (op, n) in ops {
                match op {
                    0 => {
                        let chunk: Vec<f32> = (0..n as u64).map(|i| seq(next + i)).collect();
                        next += w.push(&chunk) as u64;
                    }
                    1 => {
                        deliver_from_ring(&ctl, &mut g, &mut r, &mut out[..n], 1);
                        for &s in &out[..n] {
                            if s != 0.0 {
                                prop_assert!(!ctl.is_muted());
                                prop_assert!(s > last, "repeat or reorder: {} after {}", s, last);
                                prop_assert!(s >= first_after_unmute, "captured while muted: {}", s);
                                last = s;
                            }
                        }
                    }
                    2 => mute(&ctl, true),
                    _ => {
                        if ctl.is_muted() {
                            mute(&ctl, false);
                            first_after_unmute = seq(next);
                        }
                    }
                }
            }
        }
    }
}
