//! The realtime half: what one gate instance does per `run()`, in plain safe Rust over the
//! shared page, so the unit tests, the allocation test and the fuzz target drive exactly the
//! code PipeWire runs.
//!
//! Per cycle: the host has already copied this cycle's input into the output buffer (or zeros
//! when there is none); then
//! 1. no valid page (never created, bad magic/version/size) -> zeros;
//! 2. the controller lease: a beat seen changing restarts the frame count; more than
//!    [`LEASE_MS`](crate::abi::LEASE_MS) of frames since the last change -> zeros (no clock
//!    call here: frames are the clock);
//! 3. otherwise the core's cycle protocol: `begin_cycle` (the `cycle_seq` fence
//!    `wait_until_effective` relies on), the core gate (exact zeros when muted, fade-in on
//!    unmute), `end_cycle`.
//!
//! The fade: the page's `fade_ms` (the daemon's setting) is read every cycle, but a new length
//! is only taken while the gate is closed (muted, no page, no lease), i.e. it shapes the next
//! unmute's ramp-in. A mute never fades: zeros from the next sample, as on macOS and Windows
//! (the core's `Gate`). A live stream is never re-faded by a changed setting.
//!
//! Then the delivered level is metered (exactly 0 whenever zeros went out). No allocation,
//! lock, syscall, logging or panicking operation: only atomics, arithmetic that saturates or
//! wraps, and slice iteration.

use core::sync::atomic::Ordering;

use hardmute_core::gate::{fade_frames_for, Gate, DEFAULT_FADE_MS};

use crate::abi::{GateShm, LEASE_MS, MAX_FADE_MS};

/// Why a cycle delivered what it did (for tests and the fuzz target).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No page, or a page with a header this code does not understand.
    NoBlock,
    /// No controller beat within the lease.
    Expired,
    /// The control block said muted.
    Muted,
    /// Passed (fading in, perhaps).
    Live,
}

/// The controller lease as one instance sees it.
#[derive(Clone, Copy, Debug)]
pub struct Lease {
    last_beat: u64,
    frames_since_beat: u64,
    limit_frames: u64,
    rate: u64,
}

impl Lease {
    /// Expired: a fresh instance opens only on a beat it sees change, or when `arm` finds the
    /// controller's deadline still ahead.
    pub fn new(rate_hz: u32, shm: Option<&GateShm>) -> Self {
        let rate = u64::from(rate_hz.max(1));
        let limit_frames = rate.saturating_mul(LEASE_MS) / 1000;
        Lease {
            last_beat: shm.map_or(0, |s| s.lease_beat.load(Ordering::SeqCst)),
            frames_since_beat: limit_frames.saturating_add(1),
            limit_frames,
            rate,
        }
    }

    /// Off the realtime path (`activate`): take the current beat as seen, and open for what is
    /// left of the controller's deadline (wall clock), never more than one lease. A dead
    /// controller's deadline is in the past: the instance starts closed.
    pub fn arm(&mut self, shm: &GateShm, now_ns: u64) {
        self.last_beat = shm.lease_beat.load(Ordering::SeqCst);
        let deadline = shm.lease_deadline_ns.load(Ordering::SeqCst);
        let left_ns = deadline.saturating_sub(now_ns);
        if self.last_beat == 0 || left_ns == 0 {
            self.frames_since_beat = self.limit_frames.saturating_add(1);
            return;
        }
        let left_frames = (u128::from(left_ns) * u128::from(self.rate) / 1_000_000_000)
            .min(u128::from(self.limit_frames)) as u64;
        self.frames_since_beat = self.limit_frames - left_frames;
    }

    /// Realtime: account `frames` and say whether the lease holds for them.
    #[inline]
    pub fn tick(&mut self, shm: &GateShm, frames: u64) -> bool {
        let beat = shm.lease_beat.load(Ordering::SeqCst);
        if beat != self.last_beat {
            self.last_beat = beat;
            self.frames_since_beat = frames;
        } else {
            self.frames_since_beat = self.frames_since_beat.saturating_add(frames);
        }
        beat != 0 && self.frames_since_beat <= self.limit_frames
    }

    pub fn is_open(&self) -> bool {
        self.last_beat != 0 && self.frames_since_beat <= self.limit_frames
    }
}

/// Peak/RMS per 50 ms window of delivered audio, published into the page.
#[derive(Clone, Copy, Debug)]
struct Meter {
    window: u64,
    frames: u64,
    peak: f32,
    sum_sq: f64,
}

impl Meter {
    fn new(rate: u32) -> Self {
        Meter {
            window: u64::from((rate / 20).max(1)),
            frames: 0,
            peak: 0.0,
            sum_sq: 0.0,
        }
    }

    #[inline]
    fn add(&mut self, shm: &GateShm, out: &[f32]) {
        for &s in out {
            self.peak = self.peak.max(s.abs());
            self.sum_sq += f64::from(s) * f64::from(s);
            self.frames = self.frames.wrapping_add(1);
            if self.frames >= self.window {
                let rms = (self.sum_sq / self.frames as f64).sqrt() as f32;
                shm.level_peak_bits
                    .store(self.peak.to_bits(), Ordering::Relaxed);
                shm.level_rms_bits.store(rms.to_bits(), Ordering::Relaxed);
                shm.level_windows.fetch_add(1, Ordering::Release);
                *self = Meter::new_window(self.window);
            }
        }
    }

    fn new_window(window: u64) -> Self {
        Meter {
            window,
            frames: 0,
            peak: 0.0,
            sum_sq: 0.0,
        }
    }
}

/// One gate instance (one channel).
#[derive(Clone, Debug)]
pub struct GateRt {
    gate: Gate,
    /// The fade length (ms) `gate` was made with.
    fade_ms: u32,
    rate: u32,
    lease: Lease,
    meter: Meter,
}

impl GateRt {
    pub fn new(rate_hz: u32, shm: Option<&GateShm>) -> Self {
        let rate = rate_hz.max(1);
        let fade_ms = shm.map_or(DEFAULT_FADE_MS, GateShm::fade_ms);
        GateRt {
            gate: Gate::new(fade_frames_for(rate, fade_ms)),
            fade_ms,
            rate,
            lease: Lease::new(rate_hz, shm),
            meter: Meter::new(rate),
        }
    }

    /// The unmute fade-in (in frames) the next unmute will get.
    pub fn fade_frames(&self) -> u32 {
        self.gate.fade_frames()
    }

    /// Takes the page's fade length, only while the gate is closed (a fresh `Gate` is closed
    /// too, so nothing changes for the audio). Arithmetic only.
    #[inline]
    fn latch_fade(&mut self, shm: &GateShm) {
        let ms = shm.fade_ms().min(MAX_FADE_MS);
        if ms != self.fade_ms && self.gate.is_closed() {
            self.fade_ms = ms;
            self.gate = Gate::new(fade_frames_for(self.rate, ms));
        }
    }

    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    /// Off the realtime path: see [`Lease::arm`].
    pub fn activate(&mut self, shm: Option<&GateShm>, now_ns: u64) {
        if let Some(shm) = shm {
            self.lease.arm(shm, now_ns);
        }
    }

    /// One cycle, in place: `buf` holds this cycle's input (zeros if there was none:
    /// `no_input`). Afterwards it holds what apps get.
    #[inline]
    pub fn process(&mut self, shm: Option<&GateShm>, buf: &mut [f32], no_input: bool) -> Verdict {
        let Some(shm) = shm.filter(|s| s.control.header_ok()) else {
            self.gate.apply(true, buf, 1);
            return Verdict::NoBlock;
        };
        let frames = buf.len() as u64;
        self.latch_fade(shm);
        let verdict = if !self.lease.tick(shm, frames) {
            self.gate.apply(true, buf, 1);
            Verdict::Expired
        } else {
            let cycle = shm.control.begin_cycle();
            self.gate.apply(cycle.muted, buf, 1);
            shm.control
                .end_cycle(cycle, frames, no_input && !cycle.muted);
            if cycle.muted {
                Verdict::Muted
            } else {
                Verdict::Live
            }
        };
        self.meter.add(shm, buf);
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hardmute_core::control::{Authority, ChangeSource};

    const RATE: u32 = 48_000;

    fn live(shm: &GateShm) {
        shm.control
            .set_muted(false, ChangeSource::Cli, Authority::Owner)
            .unwrap();
    }

    #[test]
    fn no_beat_no_audio_even_when_the_state_says_live() {
        let shm = GateShm::new(1);
        live(&shm);
        let mut g = GateRt::new(RATE, Some(&shm));
        let mut buf = [0.5f32; 256];
        assert_eq!(g.process(Some(&shm), &mut buf, false), Verdict::Expired);
        assert!(buf.iter().all(|s| s.to_bits() == 0));
    }

    #[test]
    fn a_beat_opens_it_and_silence_of_the_controller_closes_it_after_the_lease() {
        let shm = GateShm::new(1);
        live(&shm);
        let mut g = GateRt::new(RATE, Some(&shm));
        shm.beat(0, 2);
        let limit = u64::from(RATE) * LEASE_MS / 1000;
        let mut frames = 0u64;
        let mut first_closed = None;
        for cycle in 0..200u64 {
            let mut buf = [0.5f32; 1024];
            let v = g.process(Some(&shm), &mut buf, false);
            frames += 1024;
            if v == Verdict::Expired && first_closed.is_none() {
                first_closed = Some(frames);
                assert!(buf.iter().all(|s| s.to_bits() == 0));
            }
            if first_closed.is_none() && cycle > 2 {
                assert_eq!(v, Verdict::Live);
                assert_eq!(buf[1023], 0.5, "past the fade-in");
            }
        }
        let closed_at = first_closed.expect("the lease ran out");
        assert!(
            closed_at > limit && closed_at <= limit + 1024,
            "{closed_at}"
        );
        // A new beat opens it again.
        shm.beat(0, 2);
        let mut buf = [0.5f32; 64];
        assert_eq!(g.process(Some(&shm), &mut buf, false), Verdict::Live);
    }

    #[test]
    fn activate_opens_only_for_what_is_left_of_a_live_deadline() {
        let shm = GateShm::new(1);
        live(&shm);
        let now = 10_000_000_000u64;
        shm.beat(now - 1_000_000_000, 2); // one second ago: 0.5 s left
        let mut g = GateRt::new(RATE, Some(&shm));
        g.activate(Some(&shm), now);
        assert!(g.lease().is_open());
        let mut open_frames = 0;
        for _ in 0..100 {
            let mut buf = [0.5f32; 480];
            if g.process(Some(&shm), &mut buf, false) != Verdict::Expired {
                open_frames += 480;
            }
        }
        assert!(
            (24_000 - 480..=24_000).contains(&open_frames),
            "{open_frames}"
        );
        // A controller that died long ago: closed from the first cycle.
        let mut g = GateRt::new(RATE, Some(&shm));
        g.activate(Some(&shm), now + 60_000_000_000);
        let mut buf = [0.5f32; 480];
        assert_eq!(g.process(Some(&shm), &mut buf, false), Verdict::Expired);
    }

    #[test]
    fn a_bad_header_means_zeros_and_muted_means_zeros() {
        let shm = GateShm::new(1);
        live(&shm);
        let mut g = GateRt::new(RATE, Some(&shm));
        shm.beat(0, 2);
        let mut buf = [0.25f32; 128];
        assert_eq!(g.process(None, &mut buf, false), Verdict::NoBlock);
        assert!(buf.iter().all(|s| s.to_bits() == 0));
        shm.control
            .set_muted(true, ChangeSource::Cli, Authority::Owner)
            .unwrap();
        let mut buf = [0.25f32; 128];
        assert_eq!(g.process(Some(&shm), &mut buf, false), Verdict::Muted);
        assert!(buf.iter().all(|s| s.to_bits() == 0));
        // Corrupt the header through the same atomics a hostile writer would use.
        // SAFETY: GateShm is repr(C) atomics; the first u32 is the magic.
        let magic = unsafe { &*(&shm as *const GateShm as *const core::sync::atomic::AtomicU32) };
        live(&shm);
        magic.store(0xdead_beef, Ordering::SeqCst);
        let mut buf = [0.25f32; 128];
        assert_eq!(g.process(Some(&shm), &mut buf, false), Verdict::NoBlock);
        assert!(buf.iter().all(|s| s.to_bits() == 0));
    }

    /// One live cycle of `n` frames of 1.0 after a beat; returns the buffer.
    fn cycle(g: &mut GateRt, shm: &GateShm, n: usize) -> ([f32; 4096], Verdict) {
        shm.beat(0, 2);
        let mut buf = [0.0f32; 4096];
        buf[..n].fill(1.0);
        let v = g.process(Some(shm), &mut buf[..n], false);
        (buf, v)
    }

    #[test]
    fn the_pages_fade_shapes_the_unmute_ramp() {
        let shm = GateShm::new(1);
        assert_eq!(
            shm.fade_ms(),
            DEFAULT_FADE_MS,
            "a fresh page carries the default"
        );
        shm.set_fade_ms(10); // 480 frames at 48 kHz
        let mut g = GateRt::new(RATE, Some(&shm));
        assert_eq!(g.fade_frames(), 480);
        live(&shm);
        let (buf, v) = cycle(&mut g, &shm, 256);
        assert_eq!(v, Verdict::Live);
        for (k, s) in buf[..256].iter().enumerate() {
            assert_eq!(*s, (k + 1) as f32 / 480.0, "frame {k}");
        }
        let (buf, _) = cycle(&mut g, &shm, 256);
        assert_eq!(buf[0], 257.0 / 480.0);
        assert_eq!(buf[223], 1.0, "the ramp ends at frame 480");
        assert!(buf[224..256].iter().all(|&s| s == 1.0));
    }

    #[test]
    fn a_changed_fade_waits_for_the_next_mute_and_a_mute_never_fades() {
        let shm = GateShm::new(1);
        shm.set_fade_ms(0);
        live(&shm);
        let mut g = GateRt::new(RATE, Some(&shm));
        let (buf, _) = cycle(&mut g, &shm, 512);
        assert!(buf[..512].iter().all(|&s| s == 1.0), "fade 0: no ramp");
        // The setting changes while live: the stream is not faded again.
        shm.set_fade_ms(20);
        let (buf, _) = cycle(&mut g, &shm, 512);
        assert!(
            buf[..512].iter().all(|&s| s == 1.0),
            "no re-fade while live"
        );
        assert_eq!(g.fade_frames(), 0);
        // A mute with the longest fade configured: exact zeros from the first sample.
        shm.set_fade_ms(MAX_FADE_MS);
        shm.control
            .set_muted(true, ChangeSource::Cli, Authority::Owner)
            .unwrap();
        let (buf, v) = cycle(&mut g, &shm, 512);
        assert_eq!(v, Verdict::Muted);
        assert!(buf[..512].iter().all(|s| s.to_bits() == 0));
        assert_eq!(
            g.fade_frames(),
            0,
            "taken at the start of a closed cycle, not mid-cycle"
        );
        let (buf, _) = cycle(&mut g, &shm, 512);
        assert!(buf[..512].iter().all(|s| s.to_bits() == 0));
        assert_eq!(g.fade_frames(), 48_000, "latched while closed");
        // The next unmute ramps over the new length.
        shm.set_fade_ms(20);
        live(&shm);
        let (buf, _) = cycle(&mut g, &shm, 960);
        assert_eq!(g.fade_frames(), 960);
        assert_eq!(buf[0], 1.0 / 960.0);
        assert_eq!(buf[959], 1.0);
    }

    #[test]
    fn a_hostile_fade_is_clamped_and_a_lapsed_lease_latches_too() {
        let shm = GateShm::new(1);
        shm.fade_ms.store(u32::MAX, Ordering::Relaxed);
        assert_eq!(shm.fade_ms(), MAX_FADE_MS);
        let mut g = GateRt::new(RATE, Some(&shm));
        assert_eq!(g.fade_frames(), RATE);
        // Closed by a missing lease (no beat yet): the page's new length is taken.
        shm.set_fade_ms(1);
        let mut buf = [0.5f32; 64];
        assert_eq!(g.process(Some(&shm), &mut buf, false), Verdict::Expired);
        assert_eq!(g.fade_frames(), 48);
        // No page: the gate keeps what it had and delivers zeros.
        let mut buf = [0.5f32; 64];
        assert_eq!(g.process(None, &mut buf, false), Verdict::NoBlock);
        assert!(buf.iter().all(|s| s.to_bits() == 0));
        assert_eq!(g.fade_frames(), 48);
    }

    #[test]
    fn level_is_exactly_zero_while_muted_and_the_signal_while_live() {
        let shm = GateShm::new(1);
        shm.beat(0, 2);
        let mut g = GateRt::new(RATE, Some(&shm));
        for _ in 0..10 {
            let mut buf = [0.5f32; 2400];
            g.process(Some(&shm), &mut buf, false);
            shm.beat(0, 2);
        }
        assert_eq!(shm.level(), (0.0, 0.0, 10));
        live(&shm);
        for _ in 0..3 {
            let mut buf = [0.5f32; 2400];
            g.process(Some(&shm), &mut buf, false);
        }
        let (peak, rms, windows) = shm.level();
        assert_eq!((peak, windows), (0.5, 13));
        assert!((rms - 0.5).abs() < 1e-6);
    }
}
