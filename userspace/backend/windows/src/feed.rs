//! The bridge's realtime step: one WASAPI capture packet into the driver's ring.
//!
//! The kernel driver stamps its cycles with KeQueryPerformanceCounter into its *own* control
//! block, which user space cannot see; what the bridge does see is the ring's read position
//! moving. So [`CaptureFeed`] keeps a local timing block and stamps it with QPC at any capture
//! callback that finds the ring emptier than it left it: the driver's 1 ms timer consumed
//! since, so its last cycle is at most ~1 ms old. That is the "fill at a common instant" the
//! core's drift controller wants, with <= 1 ms of error (<= 48 frames at 48 kHz, well inside the
//! controller's filtering). A ring that did not move since the last callback means no app is
//! reading (no stream in RUN): the stamp goes stale and `Feeder` only tops the ring up to its
//! target, so an app that starts reading gets target latency at once.
//!
//! The driver's stream rate (GET_STATE, polled off the realtime path) arrives as a number; a
//! change rebuilds the `Feeder` in place (no allocation: it is plain arrays).
//!
//! The same step meters the captured input ([`LevelTap`], the core's `level` module) for the
//! panel's level feed. The gate runs in the kernel driver, out of the daemon's reach, so this
//! is the room's level even while muted: the backend reports it only while the driver says
//! live (`backend::captured_level`).

use crate::format::{ChunkRef, SampleFn};
use crate::{MixFormat, Samples};
use hardmute_core::bridge::{Feeder, FeederConfig, HostClock, Pushed, SampleSink};
use hardmute_core::level::{LevelMeter, LevelTap};
use hardmute_core::ring::RingHeader;
use hardmute_core::{ControlBlock, Sample};
use hardmute_windows_model::ioctl::{MAX_RING_BYTES, MIN_RING_BYTES};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// Channels of the ring (the driver converts to the app's format and channel count).
pub const RING_CHANNELS: usize = 2;
/// The rate assumed until an app's stream tells the driver's real one.
pub const DEFAULT_DEVICE_RATE: u32 = 48_000;
/// The driver's timer period.
pub const DEVICE_PERIOD_MS: u32 = 1;
/// Fill the drift controller holds, measured right after a push: one shared-mode capture
/// period (10 ms) plus 10 ms for scheduling jitter, so the trough before the next push stays
/// about 10 ms above empty.
pub const TARGET_FILL_MS: u32 = 20;
/// Ring length: 200 ms at 48 kHz stereo (room for a stalled reader without wrapping into
/// overruns at once).
pub const RING_FRAMES: usize = 9_600;
const PAGE: usize = 4096;

/// The ring's memory size and sample capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingGeometry {
    /// Whole pages (VirtualAlloc's granularity); the REGISTER_BRIDGE output buffer length.
    pub bytes: usize,
    /// Sample slots in use (a whole number of frames).
    pub capacity_samples: u32,
    pub channels: u32,
}

pub fn ring_geometry(frames: usize, channels: usize) -> RingGeometry {
    let header = std::mem::size_of::<RingHeader>();
    let wanted = header + frames * channels * 4;
    let bytes = wanted
        .div_ceil(PAGE)
        .saturating_mul(PAGE)
        .clamp(MIN_RING_BYTES, MAX_RING_BYTES);
    let slots = (bytes - header) / 4;
    RingGeometry {
        bytes,
        capacity_samples: (slots / channels * channels) as u32,
        channels: channels as u32,
    }
}

/// Writes a fresh header into ring memory (positions 0).
pub fn init_header(header: &RingHeader, g: RingGeometry) {
    let fresh = RingHeader::new(g.capacity_samples, g.channels);
    for (dst, src) in [
        (&header.magic, &fresh.magic),
        (&header.version, &fresh.version),
        (&header.capacity, &fresh.capacity),
        (&header.channels, &fresh.channels),
    ] {
        dst.store(src.load(Relaxed), Relaxed);
    }
    header.read_pos.store(0, Relaxed);
    header.write_pos.store(0, Relaxed);
}

/// Counters the capture thread publishes (atomics: read by `status` without a lock).
#[derive(Debug, Default)]
pub struct FeedStats {
    pub packets: AtomicU64,
    pub frames_in: AtomicU64,
    pub frames_out: AtomicU64,
    pub dropped_idle: AtomicU64,
    pub overruns: AtomicU64,
    /// Packets that found the ring consumed since the last one (the driver is running).
    pub device_running_packets: AtomicU64,
    /// The drift correction in parts per billion (two's complement).
    pub correction_ppb: AtomicU64,
}

pub fn feeder_config(input: MixFormat, device_rate: u32) -> FeederConfig {
    FeederConfig {
        in_rate: input.rate,
        in_channels: input.channels,
        dev_rate: device_rate,
        dev_channels: RING_CHANNELS,
        dev_period: (device_rate * DEVICE_PERIOD_MS / 1000) as usize,
        target_fill: (device_rate * TARGET_FILL_MS / 1000) as usize,
    }
}

/// Per-capture-stream bridge state. Build it off the realtime path; call
/// [`CaptureFeed::on_packet`] from the capture callback.
pub struct CaptureFeed {
    feeder: Feeder,
    input: MixFormat,
    device_rate: u32,
    /// Only `cycle_host_time`, the heartbeat and overruns are used (the mute state lives in
    /// the driver).
    timing: ControlBlock,
    used_after_last_push: Option<usize>,
    zeros: [f32; 1024],
    /// The captured input's level (at the mic's rate and channel count).
    meter: LevelMeter<Arc<LevelTap>>,
}

struct PushChunk<'a, K> {
    feeder: &'a mut Feeder,
    sink: &'a mut K,
    timing: &'a ControlBlock,
    clock: HostClock,
    meter: &'a mut LevelMeter<Arc<LevelTap>>,
    channels: usize,
}

impl<K: SampleSink> SampleFn<Pushed> for PushChunk<'_, K> {
    fn call<S: Sample>(self, samples: &[S]) -> Pushed {
        self.meter.add_samples(samples, self.channels);
        self.feeder
            .push(samples, self.sink, self.timing, self.clock)
    }
}

impl CaptureFeed {
    pub fn new(input: MixFormat, device_rate: u32) -> Self {
        Self::with_level_tap(input, device_rate, Arc::new(LevelTap::new()))
    }

    /// As [`CaptureFeed::new`], metering the captured input into `level` (which outlives a
    /// capture stream reopened on another device).
    pub fn with_level_tap(input: MixFormat, device_rate: u32, level: Arc<LevelTap>) -> Self {
        let device_rate = if device_rate == 0 {
            DEFAULT_DEVICE_RATE
        } else {
            device_rate
        };
        CaptureFeed {
            feeder: Feeder::new(feeder_config(input, device_rate)),
            input,
            device_rate,
            timing: ControlBlock::new(false),
            used_after_last_push: None,
            zeros: [0.0; 1024],
            meter: LevelMeter::new(level, input.rate),
        }
    }

    /// Where this feed publishes the captured input's level.
    pub fn level_tap(&self) -> &Arc<LevelTap> {
        self.meter.tap()
    }

    pub fn device_rate(&self) -> u32 {
        self.device_rate
    }

    /// Realtime: one capture packet. `device_rate` is the driver's current stream rate (0 =
    /// no stream: keep the last one). No allocation, lock, syscall or logging.
    pub fn on_packet<K: SampleSink>(
        &mut self,
        samples: Samples<'_>,
        sink: &mut K,
        clock: HostClock,
        device_rate: u32,
        stats: &FeedStats,
    ) {
        if device_rate != 0 && device_rate != self.device_rate {
            // An app opened the virtual mic at another rate: resample to it from now on.
            self.feeder = Feeder::new(feeder_config(self.input, device_rate));
            self.device_rate = device_rate;
        }
        let used_now = sink.used();
        let consumed = self
            .used_after_last_push
            .is_some_and(|before| used_now < before);
        if consumed {
            self.timing.stamp_cycle(clock.now.max(1));
            stats.device_running_packets.fetch_add(1, Relaxed);
        }
        let CaptureFeed {
            feeder,
            timing,
            zeros,
            input,
            meter,
            ..
        } = self;
        let mut total = Pushed::default();
        samples.for_each_chunk(zeros, input.channels, |chunk: ChunkRef<'_>| {
            let p = chunk.with(PushChunk {
                feeder: &mut *feeder,
                sink: &mut *sink,
                timing,
                clock,
                meter: &mut *meter,
                channels: input.channels,
            });
            total.frames_in += p.frames_in;
            total.frames_out += p.frames_out;
            total.dropped_idle += p.dropped_idle;
            total.overrun |= p.overrun;
            total.correction = p.correction;
        });
        self.used_after_last_push = Some(sink.used());
        stats.packets.fetch_add(1, Relaxed);
        stats.frames_in.fetch_add(total.frames_in as u64, Relaxed);
        stats.frames_out.fetch_add(total.frames_out as u64, Relaxed);
        stats
            .dropped_idle
            .fetch_add(total.dropped_idle as u64, Relaxed);
        stats.overruns.fetch_add(u64::from(total.overrun), Relaxed);
        stats
            .correction_ppb
            .store((total.correction * 1e9) as i64 as u64, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SampleKind;
    use hardmute_core::ring::{SampleRing, SharedRing};
    use std::sync::atomic::AtomicU32;

    const TPS: u64 = 10_000_000;

    fn mic(rate: u32, channels: usize, kind: SampleKind) -> MixFormat {
        MixFormat {
            rate,
            channels,
            kind,
        }
    }

    fn ring(g: RingGeometry) -> (RingHeader, Vec<AtomicU32>) {
        let header = RingHeader::new(0, 0);
        init_header(&header, g);
        let slots = (0..(g.bytes - 32) / 4).map(|_| AtomicU32::new(0)).collect();
        (header, slots)
    }

    #[test]
    fn ring_geometry_fits_the_drivers_limits_in_whole_pages_and_frames() {
        let g = ring_geometry(RING_FRAMES, RING_CHANNELS);
        assert_eq!(g.bytes % PAGE, 0);
        assert!((MIN_RING_BYTES..=MAX_RING_BYTES).contains(&g.bytes));
        assert!(g.capacity_samples as usize >= RING_FRAMES * RING_CHANNELS);
        assert_eq!(g.capacity_samples % g.channels, 0);
        assert!(32 + g.capacity_samples as usize * 4 <= g.bytes);
        // tiny and huge requests are clamped to what the driver accepts
        assert_eq!(ring_geometry(1, 1).bytes, MIN_RING_BYTES);
        assert_eq!(ring_geometry(1 << 30, 2).bytes, MAX_RING_BYTES);
        let (h, s) = ring(g);
        let r = SharedRing::attach(&h, &s).expect("the driver's attach accepts our header");
        assert_eq!(r.capacity(), g.capacity_samples as usize);
        assert_eq!(r.channels(), RING_CHANNELS);
    }

    #[test]
    fn idle_device_gets_the_target_running_device_is_steered_and_silence_is_zeros() {
        let g = ring_geometry(RING_FRAMES, RING_CHANNELS);
        let (h, s) = ring(g);
        let shared = SharedRing::attach(&h, &s).unwrap();
        let (mut writer, mut reader) = (shared.writer(), shared.reader());
        let stats = FeedStats::default();
        let mut feed = CaptureFeed::new(mic(48_000, 1, SampleKind::I16), 0);
        assert_eq!(feed.device_rate(), DEFAULT_DEVICE_RATE);
        let packet = [8192i16; 480]; // 10 ms mono at 0.25 full scale
        let mut now = 1_000_000u64;
        // No app reading: the ring is topped up to the target (20 ms) and no more.
        for _ in 0..5 {
            now += TPS / 100;
            let clock = HostClock {
                now,
                ticks_per_second: TPS,
            };
            feed.on_packet(Samples::I16(&packet), &mut writer, clock, 0, &stats);
        }
        assert_eq!(reader.len(), 960 * 2);
        assert_eq!(stats.device_running_packets.load(Relaxed), 0);
        assert_eq!(stats.dropped_idle.load(Relaxed), 2400 - 960);
        // The driver reads 10 ms per 10 ms: the feed sees it running and holds the fill.
        let mut out = vec![0.0f32; 480 * 2];
        let mut heard = 0usize;
        for _ in 0..200 {
            reader.pop_into(&mut out);
            heard += out.iter().filter(|v| (**v - 0.25).abs() < 0.01).count();
            now += TPS / 100;
            let clock = HostClock {
                now,
                ticks_per_second: TPS,
            };
            feed.on_packet(Samples::I16(&packet), &mut writer, clock, 0, &stats);
        }
        assert_eq!(stats.device_running_packets.load(Relaxed), 200);
        assert_eq!(stats.overruns.load(Relaxed), 0);
        let fill = reader.len() / 2;
        assert!(
            (900..=1020).contains(&fill),
            "fill held near 960 frames: {fill}"
        );
        assert!(
            heard > 190 * 960,
            "the mic reaches the ring, mono on both channels ({heard})"
        );
        // A silent packet pushes exact zeros, never stale data.
        reader.discard_all();
        now += TPS / 100;
        let clock = HostClock {
            now,
            ticks_per_second: TPS,
        };
        feed.on_packet(
            Samples::Silent { frames: 480 },
            &mut writer,
            clock,
            0,
            &stats,
        );
        let n = reader.pop_into(&mut out);
        assert!(
            n > 0 && out[8..n].iter().all(|v| *v == 0.0),
            "silence is zeros"
        );
    }

    #[test]
    fn the_feed_meters_the_captured_input_whatever_reads_the_ring() {
        let g = ring_geometry(RING_FRAMES, RING_CHANNELS);
        let (h, s) = ring(g);
        let shared = SharedRing::attach(&h, &s).unwrap();
        let mut writer = shared.writer();
        let stats = FeedStats::default();
        let tap = Arc::new(LevelTap::new());
        let mut feed = CaptureFeed::with_level_tap(mic(48_000, 1, SampleKind::I16), 0, tap.clone());
        assert!(Arc::ptr_eq(feed.level_tap(), &tap));
        let clock = HostClock {
            now: 7,
            ticks_per_second: TPS,
        };
        // 10 packets of 10 ms at 0.25 full scale = two 50 ms windows; no app reads the ring
        // (it overflows into dropped_idle), the meter still sees the mic.
        let packet = [8192i16; 480];
        for _ in 0..10 {
            feed.on_packet(Samples::I16(&packet), &mut writer, clock, 0, &stats);
        }
        let r = tap.read();
        assert_eq!(r.windows, 2);
        assert!(
            (r.peak - 0.25).abs() < 1e-6 && (r.rms - 0.25).abs() < 1e-6,
            "{r:?}"
        );
        // Silent packets are metered as the zeros they are.
        for _ in 0..5 {
            feed.on_packet(
                Samples::Silent { frames: 480 },
                &mut writer,
                clock,
                0,
                &stats,
            );
        }
        let r = tap.read();
        assert_eq!((r.peak, r.rms, r.windows), (0.0, 0.0, 3));
        // Stereo f32 at 44.1 kHz: windows of 2205 frames, both channels together.
        let tap = Arc::new(LevelTap::new());
        let mut feed = CaptureFeed::with_level_tap(mic(44_100, 2, SampleKind::F32), 0, tap.clone());
        let packet: Vec<f32> = (0..441 * 2)
            .map(|i| if i % 2 == 0 { 0.6 } else { 0.0 })
            .collect();
        for _ in 0..5 {
            feed.on_packet(Samples::F32(&packet), &mut writer, clock, 0, &stats);
        }
        let r = tap.read();
        assert_eq!(r.windows, 1);
        assert!((r.peak - 0.6).abs() < 1e-6, "{r:?}");
        assert!((r.rms - 0.6 / 2f32.sqrt()).abs() < 1e-5, "{r:?}");
    }

    #[test]
    fn every_exclusive_mode_candidate_reaches_the_ring() {
        // Whatever format exclusive mode settles on, the bridge converts it: each candidate the
        // chooser may pick, fed a constant 0.25 full scale, arrives in the ring as 0.25.
        let mix =
            crate::format::extensible(crate::format::WAVE_FORMAT_IEEE_FLOAT, 32, 32, 48_000, 2);
        let mut candidates = crate::format::exclusive_candidates(Some(mix));
        candidates.extend(crate::format::exclusive_candidates(Some(
            crate::format::extensible(crate::format::WAVE_FORMAT_PCM, 16, 16, 44_100, 1),
        )));
        for c in candidates {
            let f = c.format;
            let g = ring_geometry(RING_FRAMES, RING_CHANNELS);
            let (h, s) = ring(g);
            let shared = SharedRing::attach(&h, &s).unwrap();
            let (mut writer, mut reader) = (shared.writer(), shared.reader());
            let stats = FeedStats::default();
            let mut feed = CaptureFeed::new(f, 0);
            let n = f.rate as usize / 100 * f.channels;
            let (i16s, i32s, f32s) = (vec![8192i16; n], vec![0x2000_0000i32; n], vec![0.25f32; n]);
            let samples = match f.kind {
                SampleKind::I16 => Samples::I16(&i16s),
                SampleKind::I32 => Samples::I32(&i32s),
                SampleKind::F32 => Samples::F32(&f32s),
            };
            let mut now = 1_000_000u64;
            for _ in 0..5 {
                now += TPS / 100;
                let clock = HostClock {
                    now,
                    ticks_per_second: TPS,
                };
                feed.on_packet(samples, &mut writer, clock, 0, &stats);
            }
            let mut out = vec![0.0f32; reader.len()];
            let got = reader.pop_into(&mut out);
            let near = out[..got]
                .iter()
                .filter(|v| (**v - 0.25).abs() < 0.01)
                .count();
            assert!(
                got > 0 && near * 10 >= got * 9,
                "{c:?}: {near} of {got} near 0.25"
            );
        }
    }

    #[test]
    fn a_new_device_rate_rebuilds_the_resampler() {
        let g = ring_geometry(RING_FRAMES, RING_CHANNELS);
        let (h, s) = ring(g);
        let shared = SharedRing::attach(&h, &s).unwrap();
        let (mut writer, reader) = (shared.writer(), shared.reader());
        let stats = FeedStats::default();
        let mut feed = CaptureFeed::new(mic(48_000, 2, SampleKind::F32), 48_000);
        let packet = [0.1f32; 480 * 2];
        let clock = HostClock {
            now: 5,
            ticks_per_second: TPS,
        };
        feed.on_packet(Samples::F32(&packet), &mut writer, clock, 44_100, &stats);
        assert_eq!(feed.device_rate(), 44_100);
        // 480 frames at 48 kHz become ~441 frames at 44.1 kHz (less the resampler's delay).
        let frames = reader.len() / 2;
        assert!((436..=442).contains(&frames), "{frames}");
        feed.on_packet(Samples::F32(&packet), &mut writer, clock, 0, &stats);
        assert_eq!(
            feed.device_rate(),
            44_100,
            "0 = no stream: keep the last rate"
        );
    }
}
