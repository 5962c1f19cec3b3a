//! The level a backend may show when it can meter only the *captured* input.
//!
//! On Linux the filter meters after the gate, so a reading taken while muted is exact zeros
//! whatever the daemon does with it. On Windows the gate runs in the kernel driver and on macOS
//! in the HAL plug-in inside coreaudiod: nothing after the gate is in the daemon's reach, so
//! their bridges meter what they capture from the physical mic, which is the room even while
//! muted. [`CapturedLevel`] is the rule that keeps such a meter to "0 while muted": a captured
//! reading is shown only when the driver said live, with the same mute generation, before and
//! after the meter was read, and only for windows that began after that generation was first
//! seen live (the window in progress then may hold audio from before the unmute). Anything else
//! reads as zeros. Every mute change (an unmute above all) must change the generation; the
//! backends pass the driver's own (Windows) or the daemon's (macOS, where only the daemon can
//! clear the mute).

use super::LevelReading;
use hardmute_core::level::LevelReading as Captured;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// No live generation seen (muted, unknown, or not yet read).
const NOT_LIVE: u64 = u64::MAX;

/// Per-backend memory of when the current live period began (atomics: `Backend::level` takes
/// `&self`; the daemon calls it under its own lock, so the loads and stores never race).
#[derive(Debug)]
pub struct CapturedLevel {
    live_generation: AtomicU64,
    first_clean_window: AtomicU64,
    /// The window count last read: a smaller one is a new meter (a bridge restarted on
    /// another device), whose count starts again from 0.
    last_windows: AtomicU64,
}

impl Default for CapturedLevel {
    fn default() -> Self {
        CapturedLevel {
            live_generation: AtomicU64::new(NOT_LIVE),
            first_clean_window: AtomicU64::new(0),
            last_windows: AtomicU64::new(0),
        }
    }
}

impl CapturedLevel {
    /// `before` / `after`: the driver's state read just before and just after `captured` was
    /// read from the bridge's meter: `Some(generation)` when live, `None` when muted or unknown.
    pub fn reading(
        &self,
        before: Option<u64>,
        captured: Captured,
        after: Option<u64>,
    ) -> LevelReading {
        let zeros = LevelReading {
            peak: 0.0,
            rms: 0.0,
            windows: captured.windows,
        };
        let generation = match (before, after) {
            (Some(b), Some(a)) if a == b => b,
            _ => {
                self.live_generation.store(NOT_LIVE, Relaxed);
                return zeros;
            }
        };
        let new_meter = self.last_windows.swap(captured.windows, Relaxed) > captured.windows;
        if self.live_generation.swap(generation, Relaxed) != generation || new_meter {
            // Live since a moment inside the window now in progress (number windows + 1): only
            // the one after it was captured wholly while live.
            self.first_clean_window
                .store(captured.windows.saturating_add(2), Relaxed);
        }
        if captured.windows < self.first_clean_window.load(Relaxed) {
            return zeros;
        }
        LevelReading {
            peak: captured.peak,
            rms: captured.rms,
            windows: captured.windows,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(n: u64, level: f32) -> Captured {
        Captured {
            peak: level,
            rms: level / 2.0,
            windows: n,
        }
    }

    #[test]
    fn zeros_while_muted_or_unknown_and_the_signal_only_after_a_clean_window() {
        let gate = CapturedLevel::default();
        // Muted (or the driver did not answer): the room is loud, the reading is zeros.
        for (before, after) in [(None, None), (Some(3), None), (None, Some(3))] {
            let r = gate.reading(before, window(10, 0.9), after);
            assert_eq!(
                (r.peak, r.rms, r.windows),
                (0.0, 0.0, 10),
                "{before:?} {after:?}"
            );
        }
        // Live from generation 4, first seen at window 10: windows 10 and 11 may hold audio
        // from before the unmute.
        assert_eq!(gate.reading(Some(4), window(10, 0.9), Some(4)).peak, 0.0);
        assert_eq!(gate.reading(Some(4), window(11, 0.9), Some(4)).peak, 0.0);
        let r = gate.reading(Some(4), window(12, 0.9), Some(4));
        assert_eq!((r.peak, r.rms, r.windows), (0.9, 0.45, 12));
        // A mute and an unmute between two reads (generation 4 -> 6): re-armed.
        assert_eq!(gate.reading(Some(6), window(13, 0.9), Some(6)).peak, 0.0);
        assert_eq!(gate.reading(Some(6), window(14, 0.9), Some(6)).peak, 0.0);
        assert_eq!(gate.reading(Some(6), window(15, 0.7), Some(6)).peak, 0.7);
        // The state changed while the meter was read: zeros, and re-armed after.
        assert_eq!(gate.reading(Some(6), window(16, 0.9), Some(7)).peak, 0.0);
        assert_eq!(gate.reading(Some(7), window(17, 0.9), Some(7)).peak, 0.0);
        assert_eq!(gate.reading(Some(7), window(19, 0.5), Some(7)).peak, 0.5);
        // A new meter (the bridge restarted) counts from 0 again: re-armed, not stuck until
        // its count passes the old one.
        assert_eq!(gate.reading(Some(7), window(0, 0.9), Some(7)).peak, 0.0);
        assert_eq!(gate.reading(Some(7), window(1, 0.9), Some(7)).peak, 0.0);
        assert_eq!(gate.reading(Some(7), window(2, 0.3), Some(7)).peak, 0.3);
    }
}
