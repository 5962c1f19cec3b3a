//! The contract between the gate inside PipeWire and its controller (hardmuted), defined once
//! and imported by both sides.
//!
//! The gate creates one sealed memfd per server process (at the first `instantiate`, off the
//! realtime path), [`SHM_SIZE`] bytes, holding a [`GateShm`] initialised **muted** and with no
//! lease. Seals (`F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL`) mean no process can truncate it:
//! a mapping of it can never raise SIGBUS in the server. It publishes where it is as a symlink
//! `$XDG_RUNTIME_DIR/hardmute/gate` -> `/proc/<server pid>/fd/<fd>` (directory mode 0700); the
//! controller opens that path (the kernel allows it to the same user only) and maps it.
//!
//! Who writes what: the controller writes the control block's `state`/`last_source`
//! ([`ControlBlock::set_muted`]), `lease_beat`, `lease_deadline_ns`, `controller_pid` and
//! `fade_ms` (the user's unmute fade-in); the
//! gate writes the control block's cycle counters, `gate_pid` and the level fields. Every
//! field is atomic, so a hostile writer can only make the gate read values, never tear memory;
//! everything the gate reads is validated per cycle (a bad header = zeros; no beat = zeros).

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use hardmute_core::control::ControlBlock;

/// Bytes of the memfd (one page; [`GateShm`] sits at offset 0).
pub const SHM_SIZE: usize = 4096;
/// How long a beat keeps the gate open: after this much audio (counted in frames by the gate,
/// which makes no clock call on the realtime path) or wall time (checked in `activate`) without
/// a new beat, the gate delivers zeros whatever the state says.
pub const LEASE_MS: u64 = 1500;
/// How often the controller beats (6 beats per lease: a late beat or two does not close it).
pub const BEAT_MS: u64 = 250;
/// `$XDG_RUNTIME_DIR/<LOCATOR_DIR>/<LOCATOR_NAME>` is the symlink to the memfd.
pub const LOCATOR_DIR: &str = "hardmute";
pub const LOCATOR_NAME: &str = "gate";
/// The memfd's name (shows in `/proc/<pid>/fd` as `/memfd:hardmute-gate (deleted)`).
pub const MEMFD_NAME: &str = "hardmute-gate";
/// The seals the gate sets and the controller insists on before mapping.
pub const REQUIRED_SEALS: i32 = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
/// The longest unmute fade-in the gate applies; a larger `fade_ms` on the page (a hostile or
/// broken writer) is clamped to it. The fade only ever ramps audio *in* after an unmute: a
/// mute is exact zeros from the next sample whatever the fade (docs/design.md, invariant 1).
pub const MAX_FADE_MS: u32 = 1000;

/// `node.name` of the node apps record from (filter-chain's playback side).
pub const SOURCE_NODE_NAME: &str = "hardmute_mic";
/// `node.description` of that node.
pub const SOURCE_NODE_DESCRIPTION: &str = "HardMute Microphone";
/// `node.name` of filter-chain's capture side: the physical source links into it.
pub const CAPTURE_NODE_NAME: &str = "hardmute_capture";
/// Marker property on both nodes (`source` / `capture`).
pub const MARKER_KEY: &str = "hardmute.role";
pub const MARKER_SOURCE: &str = "source";
pub const MARKER_CAPTURE: &str = "capture";
/// The LADSPA label of the gate.
pub const PLUGIN_LABEL: &str = "hardmute_gate";
/// The plugin's file name (cargo's name for the cdylib).
pub const PLUGIN_FILE: &str = "libhardmute_linux_gate.so";

/// The shared page. `#[repr(C)]`, atomics only; layout pinned below.
#[repr(C)]
#[derive(Debug)]
pub struct GateShm {
    /// The core's control block: mute state, generation, the `cycle_seq` fence, counters.
    pub control: ControlBlock,
    /// Bumped by the controller every [`BEAT_MS`]; 0 = never beaten.
    pub lease_beat: AtomicU64,
    /// `CLOCK_MONOTONIC` nanoseconds until which the last beat vouches (beat time +
    /// [`LEASE_MS`]). Read only off the realtime path (`activate`).
    pub lease_deadline_ns: AtomicU64,
    /// The server process that created the page.
    pub gate_pid: AtomicU32,
    /// The controller that beats (0: none yet); informational.
    pub controller_pid: AtomicU32,
    /// The level of what the gate delivered (f32 bits), one window per 50 ms of audio: exactly
    /// 0 while muted, whatever the room does.
    pub level_peak_bits: AtomicU32,
    pub level_rms_bits: AtomicU32,
    pub level_windows: AtomicU64,
    /// The unmute fade-in in milliseconds (the daemon's `fade_ms` setting), read by the gate
    /// each cycle and latched while the gate is closed: it shapes the next unmute, never a
    /// mute. Initialised to the core's default; values above [`MAX_FADE_MS`] are clamped.
    pub fade_ms: AtomicU32,
    /// Zero; keeps the size a multiple of 8.
    pub reserved: AtomicU32,
}

const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    assert!(size_of::<ControlBlock>() == 88);
    assert!(size_of::<GateShm>() == 136);
    assert!(size_of::<GateShm>() <= SHM_SIZE);
    assert!(align_of::<GateShm>() == 8);
    assert!(offset_of!(GateShm, control) == 0);
    assert!(offset_of!(GateShm, lease_beat) == 88);
    assert!(offset_of!(GateShm, lease_deadline_ns) == 96);
    assert!(offset_of!(GateShm, gate_pid) == 104);
    assert!(offset_of!(GateShm, controller_pid) == 108);
    assert!(offset_of!(GateShm, level_peak_bits) == 112);
    assert!(offset_of!(GateShm, level_rms_bits) == 116);
    assert!(offset_of!(GateShm, level_windows) == 120);
    assert!(offset_of!(GateShm, fade_ms) == 128);
    assert!(offset_of!(GateShm, reserved) == 132);
};

impl GateShm {
    /// A fresh page: muted, never beaten.
    pub const fn new(gate_pid: u32) -> Self {
        GateShm {
            control: ControlBlock::new(true),
            lease_beat: AtomicU64::new(0),
            lease_deadline_ns: AtomicU64::new(0),
            gate_pid: AtomicU32::new(gate_pid),
            controller_pid: AtomicU32::new(0),
            level_peak_bits: AtomicU32::new(0),
            level_rms_bits: AtomicU32::new(0),
            level_windows: AtomicU64::new(0),
            fade_ms: AtomicU32::new(hardmute_core::gate::DEFAULT_FADE_MS),
            reserved: AtomicU32::new(0),
        }
    }

    /// Controller side: the unmute fade-in the gate applies from its next unmute on.
    pub fn set_fade_ms(&self, ms: u32) {
        self.fade_ms.store(ms.min(MAX_FADE_MS), Ordering::Relaxed);
    }

    /// The fade-in the gate applies (clamped to [`MAX_FADE_MS`], whatever was written).
    #[inline]
    pub fn fade_ms(&self) -> u32 {
        self.fade_ms.load(Ordering::Relaxed).min(MAX_FADE_MS)
    }

    /// Controller side: one beat, vouching until `now_ns + LEASE_MS`.
    pub fn beat(&self, now_ns: u64, controller_pid: u32) {
        self.lease_deadline_ns.store(
            now_ns.saturating_add(LEASE_MS * 1_000_000),
            Ordering::SeqCst,
        );
        self.controller_pid.store(controller_pid, Ordering::Relaxed);
        self.lease_beat.fetch_add(1, Ordering::SeqCst);
    }

    /// Controller side, on a clean stop: vouch for nothing more (a gate activated from now on
    /// starts closed). The caller mutes first; the frame budget then runs out as after a crash.
    pub fn release(&self) {
        self.lease_deadline_ns.store(0, Ordering::SeqCst);
    }

    /// The level the gate last published.
    pub fn level(&self) -> (f32, f32, u64) {
        let windows = self.level_windows.load(Ordering::Acquire);
        (
            f32::from_bits(self.level_peak_bits.load(Ordering::Relaxed)),
            f32::from_bits(self.level_rms_bits.load(Ordering::Relaxed)),
            windows,
        )
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds (off the realtime path only).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// Parses a locator target `/proc/<pid>/fd/<fd>`; anything else is refused.
pub fn parse_locator_target(target: &str) -> Option<(u32, u32)> {
    let rest = target.strip_prefix("/proc/")?;
    let (pid, rest) = rest.split_once('/')?;
    let fd = rest.strip_prefix("fd/")?;
    let digits = |s: &str| !s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(pid) || !digits(fd) {
        return None;
    }
    Some((pid.parse().ok()?, fd.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locator_targets_are_parsed_strictly() {
        assert_eq!(parse_locator_target("/proc/123/fd/45"), Some((123, 45)));
        for bad in [
            "/proc/123/fd/",
            "/proc//fd/4",
            "/proc/12a/fd/4",
            "/proc/1/fd/4/x",
            "/tmp/gate",
            "/proc/1/fdx/4",
            "/proc/99999999999/fd/1",
            "",
        ] {
            assert_eq!(parse_locator_target(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_fresh_page_is_muted_unbeaten_and_valid() {
        let s = GateShm::new(7);
        assert!(s.control.header_ok() && s.control.is_muted());
        assert_eq!(s.lease_beat.load(Ordering::SeqCst), 0);
        s.beat(1_000, 9);
        assert_eq!(s.lease_beat.load(Ordering::SeqCst), 1);
        assert_eq!(
            s.lease_deadline_ns.load(Ordering::SeqCst),
            1_000 + LEASE_MS * 1_000_000
        );
        assert_eq!(s.controller_pid.load(Ordering::SeqCst), 9);
    }
}
