//! One cycle of the module's node, in plain safe Rust: the gate crate's [`GateRt`] behind a
//! `pw_filter`'s two DSP ports. The FFI layer (lib.rs) copies the input port's samples into the
//! output port's buffer (or zeros when the input has none) and hands that buffer here.
//!
//! Differences from the LADSPA host (filter-chain), which calls `activate()` off the realtime
//! thread with its own clock reading: here the main thread only raises a flag (an atomic the
//! FFI layer owns) when the node starts streaming, and the next cycle arms the lease with the
//! graph clock's `nsec` (the CLOCK_MONOTONIC time of this cycle, which PipeWire puts in
//! `spa_io_clock`): no clock call, and nothing but that flag shared between the threads. The graph rate comes from the same clock; a change of
//! it builds a fresh (closed) gate, which reopens at the controller's next beat.
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
}

impl Cycle {
    pub fn new(shm: Option<&GateShm>) -> Self {
        Cycle {
            rt: GateRt::new(INITIAL_RATE, shm),
            rate: INITIAL_RATE,
        }
    }

    /// Realtime: `out` holds this cycle's input (zeros when `no_input`); afterwards it holds
    /// what apps get. `rate` is the graph clock's rate (0: unknown, keep the current one),
    /// `now_ns` its monotonic time for this cycle; `arm`: the node (re)started streaming since
    /// the last cycle (open the lease for what is left of the controller's deadline).
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
        if arm {
            self.rt.activate(shm, now_ns);
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

    #[test]
    fn arming_uses_the_cycle_clock_and_only_once() {
        let shm = GateShm::new(1);
        live(&shm);
        let now = 50_000_000_000u64;
        shm.beat(now, 2); // deadline now + 1.5 s
        let mut c = Cycle::new(Some(&shm));
        // Not armed: the beat was taken as seen at construction, so the lease is closed.
        let mut buf = [0.5f32; 480];
        assert_eq!(
            c.process(Some(&shm), &mut buf, false, 48_000, now, false),
            Verdict::Expired
        );
        let mut buf = [0.5f32; 480];
        assert_eq!(
            c.process(Some(&shm), &mut buf, false, 48_000, now, true),
            Verdict::Live
        );
        // Armed with a clock past the deadline: closed from that cycle on.
        let mut buf = [0.5f32; 480];
        assert_eq!(
            c.process(
                Some(&shm),
                &mut buf,
                false,
                48_000,
                now + 2_000_000_000,
                true
            ),
            Verdict::Expired
        );
        assert!(buf.iter().all(|s| s.to_bits() == 0));
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
