//! One cycle of the module's node, in plain safe Rust: the gate crate's [`GateRt`] behind a
//! `pw_filter`'s two DSP ports. The FFI layer (lib.rs) copies the input port's samples into the
//! output port's buffer (or zeros when the input has none) and hands that buffer here.
//!
//! Closing the lease at every (re)start. filter-chain calls the LADSPA `activate()` off the
//! realtime thread, with its own CLOCK_MONOTONIC reading, at every start and pause, and the
//! gate opens for what is left of the controller's deadline. A `pw_filter` gives less, so the
//! lease is *closed* (until the controller's next beat, at most `BEAT_MS` later) whenever
//! - this is the node's first cycle, or
//! - the time since the previous cycle, on the graph clock (`spa_io_clock.nsec`, whose
//!   differences only are used: it need not be CLOCK_MONOTONIC), is more than twice this
//!   cycle's length (the node was not scheduled for a while), or
//! - the main thread flagged a state change to streaming (`arm`).
//!
//! The cost: up to one beat interval of zeros at the start of a recording while live.
//!
//! Known gap (probe, docs/linux-module-probe.md): with the e2e rig's driver (a
//! null-audio-sink) `nsec` read 0 in this callback on PipeWire 0.3.65 and 1.4, so the second
//! rule never fires there; on 0.3.65 the state-change rule still closed the lease at the next
//! start, on 1.4 nothing did (inferred, not traced), and a recording started after the
//! controller died got what was left of the lease's frame budget at the last pause (up to
//! 1.5 s of audio). Closing that
//! needs a clock the data thread can trust without a system call (e.g. a main-loop timer
//! publishing CLOCK_MONOTONIC into an atomic); not built.
//!
//! The graph rate comes from the same clock; a change of it builds a fresh (closed) gate, which
//! reopens at the controller's next beat.
//!
//! No allocation, lock, syscall, logging or panicking operation.

use hardmute_linux_gate::abi::GateShm;
use hardmute_linux_gate::rt::{GateRt, Verdict};

/// The rate the gate is built with before the first cycle tells the graph's.
pub const INITIAL_RATE: u32 = 48_000;

/// The realtime state of the one node.
#[derive(Debug)]
pub struct Cycle {
    rt: GateRt,
    rate: u32,
    /// The clock time of the previous cycle (0: none yet).
    last_ns: u64,
}

impl Cycle {
    pub fn new(shm: Option<&GateShm>) -> Self {
        Cycle {
            rt: GateRt::new(INITIAL_RATE, shm),
            rate: INITIAL_RATE,
            last_ns: 0,
        }
    }

    /// Closed until the beat changes: arming at the end of time leaves no deadline.
    #[inline]
    fn close_lease(&mut self, shm: Option<&GateShm>) {
        self.rt.activate(shm, u64::MAX);
    }

    /// Realtime: `out` holds this cycle's input (zeros when `no_input`); afterwards it holds
    /// what apps get. `rate` is the graph clock's rate (0: unknown, keep the current one),
    /// `now_ns` the graph clock's time for this cycle (0: unknown); `arm`: the node (re)started
    /// streaming since the last cycle. See the module docs for when the lease is armed.
    #[inline]
    pub fn process(
        &mut self,
        shm: Option<&GateShm>,
        out: &mut [f32],
        no_input: bool,
        rate: u32,
        now_ns: u64,
        arm: bool,
    ) -> Verdict {
        if rate != 0 && rate != self.rate {
            self.rate = rate;
            self.rt = GateRt::new(rate, shm);
        }
        if now_ns != 0 {
            let len_ns = (out.len() as u64).saturating_mul(1_000_000_000) / u64::from(self.rate);
            let resumed =
                self.last_ns == 0 || now_ns.saturating_sub(self.last_ns) > len_ns.saturating_mul(2);
            self.last_ns = now_ns;
            if arm || resumed {
                self.close_lease(shm);
            }
        } else if arm {
            self.close_lease(shm);
        }
        self.rt.process(shm, out, no_input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hardmute_core::control::{Authority, ChangeSource};

    #[global_allocator]
    static GLOBAL: hardmute_alloc_counter::CountingAllocator =
        hardmute_alloc_counter::CountingAllocator;

    fn live(shm: &GateShm) {
        shm.control
            .set_muted(false, ChangeSource::Cli, Authority::Owner)
            .unwrap();
    }

    #[test]
    fn a_fresh_node_gives_zeros_without_a_page_a_beat_or_an_unmute() {
        let mut c = Cycle::new(None);
        let mut buf = [0.5f32; 1024];
        assert_eq!(
            c.process(None, &mut buf, false, 48_000, 1, false),
            Verdict::NoBlock
        );
        assert!(buf.iter().all(|s| s.to_bits() == 0));
        // A page, muted (as created), with a live controller: still zeros.
        let shm = GateShm::new(1);
        let mut c = Cycle::new(Some(&shm));
        let mut buf = [0.5f32; 1024];
        assert_eq!(
            c.process(Some(&shm), &mut buf, false, 48_000, 1, false),
            Verdict::Expired,
            "no controller has beaten yet"
        );
        assert!(buf.iter().all(|s| s.to_bits() == 0));
        shm.beat(0, 2);
        let mut buf = [0.5f32; 1024];
        assert_eq!(
            c.process(Some(&shm), &mut buf, false, 48_000, 1, false),
            Verdict::Muted
        );
        assert!(buf.iter().all(|s| s.to_bits() == 0));
    }

    /// 480 frames at 48 kHz: 10 ms.
    const TEN_MS: u64 = 10_000_000;

    #[test]
    fn the_first_cycle_and_every_resume_close_the_lease_until_the_next_beat() {
        let shm = GateShm::new(1);
        live(&shm);
        let t0 = 50_000_000_000u64;
        shm.beat(t0, 2); // a live controller: deadline t0 + 1.5 s
        let mut c = Cycle::new(Some(&shm));
        let mut buf = [0.5f32; 480];
        assert_eq!(
            c.process(Some(&shm), &mut buf, false, 48_000, t0, false),
            Verdict::Expired,
            "closed at the first cycle, whatever the deadline says"
        );
        shm.beat(t0, 2);
        for k in 1..10 {
            let mut buf = [0.5f32; 480];
            assert_eq!(
                c.process(Some(&shm), &mut buf, false, 48_000, t0 + k * TEN_MS, false),
                Verdict::Live
            );
        }
        // The controller dies; the graph stops scheduling the node and an app starts again
        // 3 s later (on a clock unrelated to the controller's): the frame budget left at the
        // pause is not used.
        let t1 = t0 + 3_000_000_000;
        let mut buf = [0.5f32; 480];
        assert_eq!(
            c.process(Some(&shm), &mut buf, false, 48_000, t1, false),
            Verdict::Expired
        );
        assert!(buf.iter().all(|s| s.to_bits() == 0));
        // A controller again: open at its next beat.
        shm.beat(t1, 2);
        let mut buf = [0.5f32; 480];
        assert_eq!(
            c.process(Some(&shm), &mut buf, false, 48_000, t1 + TEN_MS, false),
            Verdict::Live
        );
        // Regular cycles (10 ms apart) never close it: the frame budget of 1.5 s runs out.
        let mut t = t1 + TEN_MS;
        let mut open = 1u64;
        for _ in 0..200 {
            t += TEN_MS;
            let mut buf = [0.5f32; 480];
            if c.process(Some(&shm), &mut buf, false, 48_000, t, false) == Verdict::Live {
                open += 1;
            }
        }
        assert_eq!(open, 150, "1.5 s of 10 ms cycles after the beat");
        // A gap just over two cycles closes; a jitter under it does not.
        shm.beat(t, 2);
        let mut buf = [0.5f32; 480];
        t += TEN_MS;
        assert_eq!(
            c.process(Some(&shm), &mut buf, false, 48_000, t, false),
            Verdict::Live
        );
        t += 2 * TEN_MS;
        assert_eq!(
            c.process(Some(&shm), &mut buf, false, 48_000, t, false),
            Verdict::Live
        );
        t += 2 * TEN_MS + 1;
        assert_eq!(
            c.process(Some(&shm), &mut buf, false, 48_000, t, false),
            Verdict::Expired
        );
    }

    #[test]
    fn the_state_flag_closes_too() {
        let shm = GateShm::new(1);
        live(&shm);
        let mut c = Cycle::new(Some(&shm));
        shm.beat(0, 2);
        let mut buf = [0.5f32; 480];
        assert_eq!(
            c.process(Some(&shm), &mut buf, false, 48_000, 0, false),
            Verdict::Live
        );
        let mut buf = [0.5f32; 480];
        assert_eq!(
            c.process(Some(&shm), &mut buf, false, 48_000, 0, true),
            Verdict::Expired
        );
        assert!(buf.iter().all(|s| s.to_bits() == 0));
        shm.beat(0, 2);
        let mut buf = [0.5f32; 480];
        assert_eq!(
            c.process(Some(&shm), &mut buf, false, 48_000, 0, false),
            Verdict::Live
        );
    }

    #[test]
    fn a_rate_change_closes_the_gate_until_the_next_beat() {
        let shm = GateShm::new(1);
        live(&shm);
        shm.beat(0, 2);
        let mut c = Cycle::new(Some(&shm));
        shm.beat(0, 2);
        let mut buf = [0.5f32; 256];
        assert_eq!(
            c.process(Some(&shm), &mut buf, false, 48_000, 0, false),
            Verdict::Live
        );
        let mut buf = [0.5f32; 256];
        assert_eq!(
            c.process(Some(&shm), &mut buf, false, 44_100, 0, false),
            Verdict::Expired
        );
        assert!(buf.iter().all(|s| s.to_bits() == 0));
        shm.beat(0, 2);
        let mut buf = [0.5f32; 256];
        assert_eq!(
            c.process(Some(&shm), &mut buf, false, 44_100, 0, false),
            Verdict::Live
        );
        // Rate 0 (unknown) keeps the gate as it is.
        let mut buf = [0.5f32; 256];
        assert_eq!(
            c.process(Some(&shm), &mut buf, false, 0, 0, false),
            Verdict::Live
        );
        assert_eq!(buf[255], 0.5);
    }

    #[test]
    fn cycles_make_no_heap_operation() {
        let shm = GateShm::new(1);
        let mut c = Cycle::new(Some(&shm));
        let mut buf = vec![0.25f32; 1024];
        let ((), ops) = hardmute_alloc_counter::heap_ops(|| {
            for i in 0..3000u32 {
                if i % 7 == 0 {
                    shm.beat(0, 2);
                }
                if i % 500 == 0 {
                    let muted = i % 1000 == 0;
                    let _ = shm
                        .control
                        .set_muted(muted, ChangeSource::Cli, Authority::Owner);
                }
                let rate = if i % 1500 == 0 { 44_100 } else { 48_000 };
                buf.fill(0.25);
                c.process(
                    Some(&shm),
                    &mut buf,
                    i % 11 == 0,
                    rate,
                    u64::from(i),
                    i % 100 == 0,
                );
                c.process(None, &mut buf, false, rate, u64::from(i), false);
            }
        });
        assert_eq!(ops, 0);
    }
}
