//! The host clock seam and the zero-time-stamp arithmetic.
//!
//! coreaudiod times IO from the series of (sample time, host time) pairs GetZeroTimeStamp returns.
//! A virtual device has no hardware clock, so it derives them from the host clock: at StartIO it
//! anchors, and each call reports the most recent whole period boundary at or before "now". The
//! period count is computed as floor(elapsed / ticks_per_period) every time (never "one step per
//! call"), so a late or rare caller catches up at once and the series stays exact.

/// Where "now" comes from: mach_absolute_time on macOS, a settable simulated clock in tests.
pub trait HostClock {
    fn now() -> u64;
    fn ticks_per_second() -> f64;
}

#[cfg(all(target_vendor = "apple", not(feature = "sim")))]
pub use apple::MachClock as Clock;
#[cfg(any(not(target_vendor = "apple"), feature = "sim"))]
pub use sim::SimClock as Clock;

#[cfg(all(target_vendor = "apple", not(feature = "sim")))]
mod apple {
    use super::HostClock;
    use std::sync::OnceLock;

    #[repr(C)]
    struct MachTimebaseInfo {
        numer: u32,
        denom: u32,
    }
    const _: () = assert!(core::mem::size_of::<MachTimebaseInfo>() == 8);

    extern "C" {
        fn mach_absolute_time() -> u64;
        fn mach_timebase_info(info: *mut MachTimebaseInfo) -> i32;
    }

    pub struct MachClock;
    static TICKS_PER_SECOND: OnceLock<f64> = OnceLock::new();

    impl HostClock for MachClock {
        fn now() -> u64 {
            // SAFETY: mach_absolute_time has no preconditions and does not enter the kernel.
            unsafe { mach_absolute_time() }
        }
        fn ticks_per_second() -> f64 {
            *TICKS_PER_SECOND.get_or_init(|| {
                let mut tb = MachTimebaseInfo { numer: 0, denom: 0 };
                // SAFETY: `tb` is a valid out-pointer for the duration of the call.
                let ok = unsafe { mach_timebase_info(&mut tb) } == 0 && tb.numer != 0;
                let (numer, denom) = if ok { (tb.numer, tb.denom) } else { (1, 1) };
                // ticks * numer / denom = nanoseconds
                1e9 * f64::from(denom) / f64::from(numer)
            })
        }
    }
}

#[cfg(any(not(target_vendor = "apple"), feature = "sim"))]
pub mod sim {
    //! A clock the simulated coreaudiod moves by hand.
    use super::HostClock;
    use std::sync::atomic::{AtomicU64, Ordering};

    static NOW: AtomicU64 = AtomicU64::new(1_000_000);
    static TICKS_PER_SECOND: AtomicU64 = AtomicU64::new(24_000_000); // Apple silicon's timebase

    pub struct SimClock;

    impl SimClock {
        pub fn set(now: u64) {
            NOW.store(now, Ordering::SeqCst);
        }
        pub fn advance(ticks: u64) {
            NOW.fetch_add(ticks, Ordering::SeqCst);
        }
        pub fn set_ticks_per_second(t: u64) {
            TICKS_PER_SECOND.store(t, Ordering::SeqCst);
        }
    }

    impl HostClock for SimClock {
        fn now() -> u64 {
            NOW.load(Ordering::SeqCst)
        }
        fn ticks_per_second() -> f64 {
            TICKS_PER_SECOND.load(Ordering::SeqCst) as f64
        }
    }
}

/// Host ticks in one zero-time-stamp period of `period_frames` at `rate_hz`.
pub fn ticks_per_period(ticks_per_second: f64, rate_hz: f64, period_frames: u32) -> f64 {
    ticks_per_second * f64::from(period_frames) / rate_hz
}

/// The latest period boundary at or before `now`: (sample time, host time). Whole periods since the
/// anchor, computed from scratch each call.
pub fn zero_time_stamp(
    anchor: u64,
    now: u64,
    ticks_per_period: f64,
    period_frames: u32,
) -> (f64, u64) {
    let elapsed = now.saturating_sub(anchor) as f64;
    let periods = if ticks_per_period > 0.0 {
        (elapsed / ticks_per_period).floor()
    } else {
        0.0
    };
    let sample_time = periods * f64::from(period_frames);
    let host_time = anchor + (periods * ticks_per_period) as u64;
    (sample_time, host_time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catches_up_whole_periods_in_one_call() {
        let tpp = ticks_per_period(24_000_000.0, 48_000.0, 16_384); // 8_192_000 ticks
        assert_eq!(tpp, 8_192_000.0);
        assert_eq!(zero_time_stamp(100, 100, tpp, 16_384), (0.0, 100));
        assert_eq!(
            zero_time_stamp(100, 100 + 8_191_999, tpp, 16_384),
            (0.0, 100)
        );
        // Ten and a half periods later: exactly ten periods, not one step.
        let (s, h) = zero_time_stamp(100, 100 + 86_016_000, tpp, 16_384);
        assert_eq!(s, 10.0 * 16_384.0);
        assert_eq!(h, 100 + 81_920_000);
    }

    #[test]
    fn a_clock_behind_the_anchor_reports_the_anchor() {
        assert_eq!(zero_time_stamp(1000, 10, 5.0, 512), (0.0, 1000));
    }
}
