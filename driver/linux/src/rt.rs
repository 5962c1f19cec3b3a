//! The realtime half: what the filter's process callback does once per graph cycle.
//!
//! PipeWire hands a DSP filter one planar f32 buffer per port; the core gate works on
//! interleaved frames. So one cycle = gather the channel inputs into an interleaved scratch
//! buffer, run `deliver_from_input` (the gate: exact zeros when muted, zeros when there is no
//! input), scatter the result to the output ports. The scratch buffers are allocated when the
//! filter is built; this path allocates nothing, takes no lock, makes no syscall, logs nothing
//! and has no indexing that could panic (tests/rt_no_alloc.rs counts allocations around it).
//!
//! The same cycle meters what it delivered ([`LevelTap`], the core's `level` module): peak and RMS per window of about
//! 50 ms, published through atomics for the daemon's level feed. It meters the gate's *output*,
//! not the raw input: while muted that is the exact zeros apps get, so the meter cannot carry
//! anything about the room whatever the daemon does with it; while live it is what apps already
//! hear.

use std::sync::Arc;

use crate::hm_core::{control::ControlBlock, deliver::deliver_from_input, gate};

/// Most channels a HardMute node follows (a physical source with more is fed by its first 32).
pub const MAX_CHANNELS: usize = 32;
/// PipeWire's largest quantum. Longer cycles (never seen) are processed in chunks.
pub const MAX_FRAMES: usize = 8192;

use crate::hm_core::level::LevelMeter;
pub use crate::hm_core::level::{LevelReading, LevelTap, LEVEL_WINDOWS_PER_SEC};

pub struct RtGate {
    gate: gate::Gate,
    channels: usize,
    interleaved_in: Box<[f32]>,
    interleaved_out: Box<[f32]>,
    meter: LevelMeter<Arc<LevelTap>>,
}

impl RtGate {
    /// Allocates the scratch buffers (off the realtime path).
    pub fn new(channels: usize, rate_hz: u32, fade_ms: u32) -> Self {
        Self::with_level_tap(channels, rate_hz, fade_ms, Arc::new(LevelTap::new()))
    }

    /// As [`RtGate::new`], publishing the delivered level into `tap` (which outlives a gate
    /// rebuilt for a new channel layout).
    pub fn with_level_tap(channels: usize, rate_hz: u32, fade_ms: u32, tap: Arc<LevelTap>) -> Self {
        let channels = channels.clamp(1, MAX_CHANNELS);
        RtGate {
            gate: gate::Gate::new(gate::fade_frames_for(rate_hz, fade_ms)),
            channels,
            interleaved_in: vec![0.0; MAX_FRAMES * channels].into_boxed_slice(),
            interleaved_out: vec![0.0; MAX_FRAMES * channels].into_boxed_slice(),
            meter: LevelMeter::new(tap, rate_hz),
        }
    }

    /// Where this gate publishes the level of what it delivers.
    pub fn level_tap(&self) -> &Arc<LevelTap> {
        self.meter.tap()
    }

    pub fn channels(&self) -> usize {
        self.channels
    }

    /// One graph cycle of `frames` frames. `inputs[c]` is channel c's input buffer, `None` when
    /// the port has no buffer (not linked: muted with release-on-mute, physical source gone).
    /// `outputs[c]` is channel c's output buffer, `None` when the port has none this cycle.
    pub fn process(
        &mut self,
        ctl: &ControlBlock,
        inputs: &[Option<&[f32]>],
        outputs: &mut [Option<&mut [f32]>],
        frames: usize,
    ) {
        let RtGate {
            gate,
            channels,
            interleaved_in,
            interleaved_out,
            meter,
        } = self;
        let ch = *channels;
        let mut done = 0;
        while done < frames {
            let n = (frames - done).min(MAX_FRAMES);
            let samples = n * ch;
            let (Some(inbuf), Some(outbuf)) = (
                interleaved_in.get_mut(..samples),
                interleaved_out.get_mut(..samples),
            ) else {
                return;
            };
            let have_input = inputs.iter().take(ch).any(Option::is_some);
            if have_input {
                for c in 0..ch {
                    let column = inbuf.iter_mut().skip(c).step_by(ch);
                    match inputs.get(c).copied().flatten() {
                        Some(src) => {
                            let mut src = src.iter().skip(done);
                            for slot in column {
                                *slot = src.next().copied().unwrap_or(0.0);
                            }
                        }
                        None => column.for_each(|slot| *slot = 0.0),
                    }
                }
                deliver_from_input(ctl, gate, Some(&*inbuf), outbuf, ch);
            } else {
                deliver_from_input(ctl, gate, None, outbuf, ch);
            }
            meter.add(outbuf, ch);
            for (c, out) in outputs.iter_mut().take(ch).enumerate() {
                if let Some(dst) = out {
                    let column = outbuf.iter().skip(c).step_by(ch);
                    for (d, s) in dst.iter_mut().skip(done).zip(column) {
                        *d = *s;
                    }
                }
            }
            done += n;
        }
    }
}
