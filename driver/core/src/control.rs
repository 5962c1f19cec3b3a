//! The control block: the hard-mute state as the realtime path sees it.
//!
//! `#[repr(C)]` and made of atomics only, so it can live in memory shared across an ABI — the
//! Windows driver's locked control buffer, the macOS plugin's shared state — with a layout pinned
//! by the assertions below. Every field is written by exactly one side:
//! - the controller (daemon, IOCTL handler, plugin property setter) writes `state` and `last_source`;
//! - the realtime delivery path writes `cycle_seq`, the frame counters and `acked_generation`;
//! - the bridge writes `bridge_heartbeat` and `overruns`.
//!
//! ## Why `cycle_seq`
//! Invariant 2 says a mute command may only return once the realtime path will see it. The
//! delivery path bumps `cycle_seq` to odd when a cycle starts (before it reads the state) and to
//! even when it ends. A controller that stores the new state and then reads `cycle_seq` even knows
//! no cycle is in flight, so every later cycle reads the new state (both sides use `SeqCst`); if it
//! reads odd, it waits for that one cycle to finish. See [`ControlBlock::wait_until_effective`].
//! One control block serves one delivery thread.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};

/// "HMUT" little-endian.
pub const MAGIC: u32 = u32::from_le_bytes(*b"HMUT");
/// Bumped on any layout or meaning change.
pub const VERSION: u32 = 1;

/// Who asked for the last change. Carried across the driver ABIs as a `u32` and across the IPC
/// protocol by the snake-case names of [`ChangeSource::name`] (feature `serde`); this is the one
/// definition both use.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum ChangeSource {
    Startup = 1,
    Cli = 2,
    Hotkey = 3,
    Panel = 4,
    Tray = 5,
    Daemon = 6,
    /// An OS mute control (endpoint mute node, macOS input mute): may add mute, never clear it.
    OsMuteControl = 7,
    /// Any client that is not the user's own session.
    OtherClient = 8,
    /// Set by a driver or daemon when something failed and it closed the gate.
    FailSafe = 9,
}

impl ChangeSource {
    pub const fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            1 => Self::Startup,
            2 => Self::Cli,
            3 => Self::Hotkey,
            4 => Self::Panel,
            5 => Self::Tray,
            6 => Self::Daemon,
            7 => Self::OsMuteControl,
            8 => Self::OtherClient,
            9 => Self::FailSafe,
            _ => return None,
        })
    }

    /// The name on the wire (the IPC protocol's `source` field).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Startup => "startup",
            Self::Cli => "cli",
            Self::Hotkey => "hotkey",
            Self::Panel => "panel",
            Self::Tray => "tray",
            Self::Daemon => "daemon",
            Self::OsMuteControl => "os_mute_control",
            Self::OtherClient => "other_client",
            Self::FailSafe => "fail_safe",
        }
    }
}

/// For people: `status` prints "muted by the hotkey" style words.
impl core::fmt::Display for ChangeSource {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::OsMuteControl => "os mute control",
            Self::OtherClient => "other client",
            Self::FailSafe => "fail-safe",
            other => other.name(),
        })
    }
}

/// Whether the requester is the logged-in user's own session (invariant 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Authority {
    /// The user's own session: may mute and unmute.
    Owner,
    /// Anyone else, including OS-generic mute controls: may add mute, never clear it.
    Other,
}

/// An unmute asked for without the owner's authority.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused;

impl core::fmt::Display for Refused {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("only the user's own session can clear hard mute")
    }
}

/// What the realtime path read at the start of a cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cycle {
    pub muted: bool,
    pub generation: u64,
}

/// The shared, versioned hard-mute state. See the module docs for who writes what.
#[repr(C)]
#[derive(Debug)]
pub struct ControlBlock {
    // Atomic although constant after creation: the block may live in memory the other side of
    // the ABI can write, and a plain field would make that a data race in Rust's model.
    magic: AtomicU32,
    version: AtomicU32,
    size: AtomicU32,
    last_source: AtomicU32,
    /// `generation << 1 | muted`: one word, so a reader never sees a state with another state's
    /// generation.
    state: AtomicU64,
    cycle_seq: AtomicU64,
    frames_delivered: AtomicU64,
    frames_zeroed: AtomicU64,
    underruns: AtomicU64,
    overruns: AtomicU64,
    bridge_heartbeat: AtomicU64,
    acked_generation: AtomicU64,
    /// Host-clock time (QPC ticks on Windows, mach_absolute_time on macOS) at which the last
    /// delivery cycle started: lets a bridge on another clock measure the ring's fill at a
    /// common instant (see `drift`).
    cycle_host_time: AtomicU64,
}

// The ABI: any change here is a VERSION bump.
const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    assert!(size_of::<ControlBlock>() == 88);
    assert!(align_of::<ControlBlock>() == 8);
    assert!(offset_of!(ControlBlock, magic) == 0);
    assert!(offset_of!(ControlBlock, version) == 4);
    assert!(offset_of!(ControlBlock, size) == 8);
    assert!(offset_of!(ControlBlock, last_source) == 12);
    assert!(offset_of!(ControlBlock, state) == 16);
    assert!(offset_of!(ControlBlock, cycle_seq) == 24);
    assert!(offset_of!(ControlBlock, frames_delivered) == 32);
    assert!(offset_of!(ControlBlock, frames_zeroed) == 40);
    assert!(offset_of!(ControlBlock, underruns) == 48);
    assert!(offset_of!(ControlBlock, overruns) == 56);
    assert!(offset_of!(ControlBlock, bridge_heartbeat) == 64);
    assert!(offset_of!(ControlBlock, acked_generation) == 72);
    assert!(offset_of!(ControlBlock, cycle_host_time) == 80);
};

/// A plain copy of every field, for status reports and IOCTL replies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlSnapshot {
    pub version: u32,
    pub muted: bool,
    pub generation: u64,
    pub last_source: Option<ChangeSource>,
    pub cycle_seq: u64,
    pub frames_delivered: u64,
    pub frames_zeroed: u64,
    pub underruns: u64,
    pub overruns: u64,
    pub bridge_heartbeat: u64,
    pub acked_generation: u64,
    pub cycle_host_time: u64,
}

impl ControlSnapshot {
    /// Who made the last change; a block nobody has changed yet holds the startup mute.
    pub fn source(&self) -> ChangeSource {
        self.last_source.unwrap_or(ChangeSource::Startup)
    }
}

impl ControlBlock {
    /// A fresh block. Drivers start muted: a fresh install is muted, and the daemon applies the
    /// persisted state before any audio flows.
    pub const fn new(initially_muted: bool) -> Self {
        ControlBlock {
            magic: AtomicU32::new(MAGIC),
            version: AtomicU32::new(VERSION),
            size: AtomicU32::new(core::mem::size_of::<ControlBlock>() as u32),
            last_source: AtomicU32::new(ChangeSource::Startup as u32),
            state: AtomicU64::new(initially_muted as u64),
            cycle_seq: AtomicU64::new(0),
            frames_delivered: AtomicU64::new(0),
            frames_zeroed: AtomicU64::new(0),
            underruns: AtomicU64::new(0),
            overruns: AtomicU64::new(0),
            bridge_heartbeat: AtomicU64::new(0),
            acked_generation: AtomicU64::new(0),
            cycle_host_time: AtomicU64::new(0),
        }
    }

    /// True if the header is one this code understands (for blocks received across an ABI).
    pub fn header_ok(&self) -> bool {
        self.magic.load(Relaxed) == MAGIC
            && self.version.load(Relaxed) == VERSION
            && self.size.load(Relaxed) as usize == core::mem::size_of::<Self>()
    }

    pub fn is_muted(&self) -> bool {
        self.state.load(SeqCst) & 1 == 1
    }

    pub fn generation(&self) -> u64 {
        self.state.load(SeqCst) >> 1
    }

    /// Changes the hard-mute state. Anyone may add mute; only [`Authority::Owner`] may clear it.
    /// Returns the generation now in force (unchanged when the state already was `muted`).
    /// Pair with [`wait_until_effective`](Self::wait_until_effective) before acknowledging.
    pub fn set_muted(
        &self,
        muted: bool,
        source: ChangeSource,
        who: Authority,
    ) -> Result<u64, Refused> {
        if !muted && who != Authority::Owner {
            return Err(Refused);
        }
        let mut cur = self.state.load(SeqCst);
        loop {
            if (cur & 1 == 1) == muted {
                return Ok(cur >> 1);
            }
            let next = (((cur >> 1) + 1) << 1) | muted as u64;
            match self.state.compare_exchange_weak(cur, next, SeqCst, SeqCst) {
                Ok(_) => {
                    self.last_source.store(source as u32, SeqCst);
                    return Ok(next >> 1);
                }
                Err(seen) => cur = seen,
            }
        }
    }

    /// Returns once no realtime cycle that could have read the previous state is still running:
    /// from then on every delivered buffer obeys the current state. `pause` is called between
    /// polls (sleep a fraction of a period); after `max_polls` it gives up and returns false —
    /// the delivery thread is stuck or gone, so it delivers nothing at all.
    pub fn wait_until_effective(&self, mut pause: impl FnMut(), max_polls: u32) -> bool {
        let seen = self.cycle_seq.load(SeqCst);
        if seen & 1 == 0 {
            return true;
        }
        for _ in 0..max_polls {
            pause();
            if self.cycle_seq.load(SeqCst) != seen {
                return true;
            }
        }
        false
    }

    /// Realtime side: call first thing in a delivery cycle; obey `muted` for the whole cycle.
    #[inline]
    pub fn begin_cycle(&self) -> Cycle {
        self.cycle_seq.fetch_add(1, SeqCst);
        let s = self.state.load(SeqCst);
        Cycle {
            muted: s & 1 == 1,
            generation: s >> 1,
        }
    }

    /// Realtime side: call after the cycle's buffer is complete.
    ///
    /// Only the delivery thread writes these fields, so plain load + store (no locked
    /// read-modify-write) is exact and keeps the per-cycle cost to one fence in `begin_cycle`.
    #[inline]
    pub fn end_cycle(&self, cycle: Cycle, frames: u64, underrun: bool) {
        bump(&self.frames_delivered, frames);
        if cycle.muted {
            bump(&self.frames_zeroed, frames);
        }
        if underrun {
            bump(&self.underruns, 1);
        }
        self.acked_generation.store(cycle.generation, Relaxed);
        // Release: everything this cycle wrote is done before a controller sees it end.
        bump_release(&self.cycle_seq);
    }

    /// Realtime side, optional: the host-clock time of this cycle's start, for bridges that
    /// measure the ring fill across two clocks.
    #[inline]
    pub fn stamp_cycle(&self, host_time: u64) {
        self.cycle_host_time.store(host_time, Relaxed);
    }

    /// The host-clock time of the last delivery cycle's start (0: never stamped).
    #[inline]
    pub fn cycle_host_time(&self) -> u64 {
        self.cycle_host_time.load(Relaxed)
    }

    /// Bridge side: "I delivered audio" — lets the daemon tell a live bridge from a dead one.
    #[inline]
    pub fn heartbeat(&self) {
        self.bridge_heartbeat.fetch_add(1, Relaxed);
    }

    /// Bridge side: the ring was full and audio was dropped.
    #[inline]
    pub fn note_overrun(&self) {
        self.overruns.fetch_add(1, Relaxed);
    }

    pub fn snapshot(&self) -> ControlSnapshot {
        let s = self.state.load(SeqCst);
        ControlSnapshot {
            version: self.version.load(Relaxed),
            muted: s & 1 == 1,
            generation: s >> 1,
            last_source: ChangeSource::from_u32(self.last_source.load(Relaxed)),
            cycle_seq: self.cycle_seq.load(SeqCst),
            frames_delivered: self.frames_delivered.load(Relaxed),
            frames_zeroed: self.frames_zeroed.load(Relaxed),
            underruns: self.underruns.load(Relaxed),
            overruns: self.overruns.load(Relaxed),
            bridge_heartbeat: self.bridge_heartbeat.load(Relaxed),
            acked_generation: self.acked_generation.load(Relaxed),
            cycle_host_time: self.cycle_host_time.load(Relaxed),
        }
    }
}

/// Single-writer counter increment.
#[inline]
fn bump(a: &AtomicU64, n: u64) {
    a.store(a.load(Relaxed).wrapping_add(n), Relaxed);
}

#[inline]
fn bump_release(a: &AtomicU64) {
    a.store(a.load(Relaxed).wrapping_add(1), Release);
}

impl Default for ControlBlock {
    fn default() -> Self {
        Self::new(true)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    #[test]
    fn others_add_mute_but_never_clear_it() {
        let c = ControlBlock::new(false);
        assert_eq!(
            c.set_muted(true, ChangeSource::OsMuteControl, Authority::Other),
            Ok(1)
        );
        assert!(c.is_muted());
        assert_eq!(
            c.set_muted(false, ChangeSource::OtherClient, Authority::Other),
            Err(Refused)
        );
        assert!(c.is_muted());
        assert_eq!(c.snapshot().last_source, Some(ChangeSource::OsMuteControl));
        assert_eq!(
            c.set_muted(false, ChangeSource::Cli, Authority::Owner),
            Ok(2)
        );
        assert!(!c.is_muted());
        // no-op keeps the generation
        assert_eq!(
            c.set_muted(false, ChangeSource::Cli, Authority::Owner),
            Ok(2)
        );
    }

    #[test]
    fn header_and_sources_round_trip() {
        let c = ControlBlock::default();
        assert!(c.header_ok() && c.is_muted());
        for v in 1..=9 {
            assert_eq!(ChangeSource::from_u32(v).unwrap() as u32, v);
        }
        assert_eq!(ChangeSource::from_u32(0), None);
        assert_eq!(ChangeSource::from_u32(10), None);
    }

    #[test]
    fn wait_returns_at_once_when_idle_and_waits_for_a_cycle_in_flight() {
        let c = ControlBlock::new(false);
        assert!(c.wait_until_effective(|| panic!("must not poll"), 10));
        let cyc = c.begin_cycle();
        c.set_muted(true, ChangeSource::Cli, Authority::Owner)
            .unwrap();
        let mut polls = 0;
        assert!(
            !c.wait_until_effective(|| polls += 1, 5),
            "cycle still running"
        );
        assert_eq!(polls, 5);
        let mut polls = 0;
        assert!(c.wait_until_effective(
            || {
                polls += 1;
                if polls == 3 {
                    c.end_cycle(cyc, 10, false);
                }
            },
            100
        ));
        assert_eq!(polls, 3);
        assert!(c.begin_cycle().muted);
    }

    /// The promise behind invariant 2, under real concurrency: once `set_muted` +
    /// `wait_until_effective` return, no cycle that starts or ends afterwards was unmuted.
    #[test]
    fn no_unmuted_cycle_ends_after_mute_is_acknowledged() {
        let c = Arc::new(ControlBlock::new(false));
        let acked = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let rt = {
            let (c, acked, stop) = (c.clone(), acked.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut violations = 0u32;
                while !stop.load(SeqCst) {
                    let cyc = c.begin_cycle();
                    // "deliver": an unmuted cycle that runs into the acknowledged region is a leak
                    for _ in 0..50 {
                        core::hint::spin_loop();
                    }
                    if !cyc.muted && acked.load(SeqCst) {
                        violations += 1;
                    }
                    c.end_cycle(cyc, 1, false);
                }
                violations
            })
        };
        for _ in 0..2000 {
            acked.store(false, SeqCst);
            c.set_muted(false, ChangeSource::Cli, Authority::Owner)
                .unwrap();
            std::thread::yield_now();
            c.set_muted(true, ChangeSource::Cli, Authority::Owner)
                .unwrap();
            assert!(c.wait_until_effective(std::thread::yield_now, 1_000_000));
            acked.store(true, SeqCst);
            std::thread::yield_now();
        }
        stop.store(true, SeqCst);
        assert_eq!(rt.join().unwrap(), 0);
        assert!(c.snapshot().frames_delivered > 0);
    }
}
