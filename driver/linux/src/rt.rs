//! The realtime half: what the filter's process callback does once per graph cycle.
//!
//! PipeWire hands a DSP filter one planar f32 buffer per port; the core gate works on
//! interleaved frames. So one cycle = gather the channel inputs into an interleaved scratch
//! buffer, run `deliver_from_input` (the gate: exact zeros when muted, zeros when there is no
//! input), scatter the result to the output ports. The scratch buffers are allocated when the
//! filter is built; this path allocates nothing, takes no lock, makes no syscall, logs nothing
//! and has no indexing that could panic (tests/rt_no_alloc.rs counts allocations around it).
//!
//! The same cycle meters what it delivered ([`LevelTap`]): peak and RMS per window of about
//! 50 ms, published through atomics for the daemon's level feed. It meters the gate's *output*,
//! not the raw input: while muted that is the exact zeros apps get, so the meter cannot carry
//! anything about the room whatever the daemon does with it; while live it is what apps already
//! hear.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use crate::hm_core::{control::ControlBlock, deliver::deliver_from_input, gate};

/// Most channels a HardMute node follows (a physical source with more is fed by its first 32).
pub const MAX_CHANNELS: usize = 32;
/// PipeWire's largest quantum. Longer cycles (never seen) are processed in chunks.
pub const MAX_FRAMES: usize = 8192;

/// Level windows per second (the daemon sends at most this many level events).
pub const LEVEL_WINDOWS_PER_SEC: u32 = 20;

/// The last level window the realtime cycle published. One writer (the process callback), any
/// number of readers; plain atomic loads and stores, so the writer never waits.
#[derive(Debug, Default)]
pub struct LevelTap {
    peak_bits: AtomicU32,
    rms_bits: AtomicU32,
    /// Windows published so far: a reader sees whether a new one arrived since its last look.
    windows: AtomicU64,
}

/// One published window: linear full scale, all channels together.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LevelReading {
    pub peak: f32,
    pub rms: f32,
    /// How many windows had been published when this one was read (0 = none yet).
    pub windows: u64,
}

impl LevelTap {
    pub fn new() -> Self {
        Self::default()
    }

    fn publish(&self, peak: f32, rms: f32) {
        self.peak_bits.store(peak.to_bits(), Ordering::Relaxed);
        self.rms_bits.store(rms.to_bits(), Ordering::Relaxed);
        self.windows.fetch_add(1, Ordering::Release);
    }

    /// The latest window. A window published while this reads may mix two windows' values;
    /// a meter does not care, and the writer never waits for a reader.
    pub fn read(&self) -> LevelReading {
        let windows = self.windows.load(Ordering::Acquire);
        LevelReading {
            peak: f32::from_bits(self.peak_bits.load(Ordering::Relaxed)),
            rms: f32::from_bits(self.rms_bits.load(Ordering::Relaxed)),
            windows,
        }
    }
}

/// Accumulates one window of delivered frames on the realtime thread (plain fields).
struct LevelMeter {
    tap: Arc<LevelTap>,
    window_frames: usize,
    frames: usize,
    peak: f32,
    sum_squares: f64,
    samples: usize,
}

impl LevelMeter {
    fn new(tap: Arc<LevelTap>, rate_hz: u32) -> Self {
        LevelMeter {
            tap,
            window_frames: (rate_hz / LEVEL_WINDOWS_PER_SEC).max(1) as usize,
            frames: 0,
            peak: 0.0,
            sum_squares: 0.0,
            samples: 0,
        }
    }

    /// Meters interleaved frames of `channels` samples; publishes every full window.
    fn add(&mut self, interleaved: &[f32], channels: usize) {
        for frame in interleaved.chunks(channels.max(1)) {
            for &sample in frame {
                // NaN never wins `max`, so a corrupt sample cannot poison the meter.
                self.peak = self.peak.max(sample.abs());
                self.sum_squares += f64::from(sample) * f64::from(sample);
            }
            self.samples += frame.len();
            self.frames += 1;
            if self.frames >= self.window_frames {
                let rms = if self.samples == 0 {
                    0.0
                } else {
                    (self.sum_squares / self.samples as f64).sqrt() as f32
                };
                self.tap.publish(self.peak.min(1.0), rms.min(1.0));
                self.frames = 0;
                self.peak = 0.0;
                self.sum_squares = 0.0;
                self.samples = 0;
            }
        }
    }
}

pub struct RtGate {
    gate: gate::Gate,
    channels: usize,
    interleaved_in: Box<[f32]>,
    interleaved_out: Box<[f32]>,
    meter: LevelMeter,
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
        &self.meter.tap
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
