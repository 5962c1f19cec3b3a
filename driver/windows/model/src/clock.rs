//! Stream position from QPC time.
//!
//! The position is a pure function of the QPC ticks elapsed since the current run segment
//! started: `frames = base + floor(elapsed * rate / qpc_freq)`, computed as
//! `whole_seconds * rate + floor(sub_second_ticks * rate / qpc_freq)`, so the sub-frame
//! remainder is never rounded away (it is carried inside `elapsed`) and nothing drifts, however
//! long the stream runs or however irregular the timer is. No u128 and no overflow for
//! any realistic uptime: `sub_second_ticks < qpc_freq`, so the product stays below
//! `qpc_freq * rate` (< 2^63 for QPC frequencies up to ~10^14 Hz).

/// Clock of one stream: frames due at a QPC instant, and the QPC instant of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentClock {
    qpc_freq: u64,
    rate: u32,
    /// QPC at which the current RUN segment began (valid while running).
    segment_start: u64,
    /// Frames already produced when the segment began.
    segment_base: u64,
}

impl SegmentClock {
    /// `qpc_freq` must be non-zero (KeQueryPerformanceCounter never reports 0).
    pub const fn new(qpc_freq: u64, rate: u32) -> Self {
        let qpc_freq = if qpc_freq == 0 { 1 } else { qpc_freq };
        SegmentClock {
            qpc_freq,
            rate,
            segment_start: 0,
            segment_base: 0,
        }
    }

    /// A clock whose run segment is already known (the packet board rebuilds the stream's
    /// clock from its published parts).
    pub const fn with_segment(qpc_freq: u64, rate: u32, start: u64, base: u64) -> Self {
        let mut clock = Self::new(qpc_freq, rate);
        clock.segment_start = start;
        clock.segment_base = base;
        clock
    }

    pub const fn rate(&self) -> u32 {
        self.rate
    }

    pub const fn qpc_freq(&self) -> u64 {
        self.qpc_freq
    }

    /// (QPC at which the current run segment began, frames produced before it).
    pub const fn segment(&self) -> (u64, u64) {
        (self.segment_start, self.segment_base)
    }

    /// Starts a run segment at `now` continuing from `frames_so_far`.
    pub fn start_segment(&mut self, now: u64, frames_so_far: u64) {
        self.segment_start = now;
        self.segment_base = frames_so_far;
    }

    /// Total frames due at `now` (never less than the segment base, even if `now` is
    /// before the segment start: QPC is monotonic, but a caller's sample may be stale).
    pub fn frames_at(&self, now: u64) -> u64 {
        let elapsed = now.saturating_sub(self.segment_start);
        let whole = elapsed / self.qpc_freq;
        let part = elapsed % self.qpc_freq;
        let rate = u64::from(self.rate);
        self.segment_base
            .saturating_add(whole.saturating_mul(rate))
            .saturating_add(part * rate / self.qpc_freq)
    }

    /// The first QPC instant at which `frame` total frames are due (inverse of
    /// [`frames_at`](Self::frames_at), rounded up), for packet timestamps.
    pub fn qpc_of_frame(&self, frame: u64) -> u64 {
        let rel = frame.saturating_sub(self.segment_base);
        let rate = u64::from(self.rate.max(1));
        let whole = rel / rate;
        let part = rel % rate;
        // ceil(part * f / rate): part < rate, so part * f fits as for frames_at.
        let ticks = whole
            .saturating_mul(self.qpc_freq)
            .saturating_add((part * self.qpc_freq).div_ceil(rate));
        self.segment_start.saturating_add(ticks)
    }
}
