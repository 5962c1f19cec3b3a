//! TEMPORARY stand-in for the parts of `hardmute-core` this crate uses, written to the brief's
//! contract so the PipeWire side can be built and tested before the core lands on main.
//! Deleted when `git merge main` brings the real crate.
#![allow(dead_code)]

pub mod control {
    use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    #[derive(Debug, Clone, Copy)]
    pub enum ChangeSource { Startup = 1, Cli, Hotkey, Panel, Tray, Daemon, OsMuteControl, OtherClient, FailSafe }
    #[derive(Debug, Clone, Copy)]
    pub enum Authority { Owner, Other }
    #[derive(Debug)]
    pub struct Refused;
    #[derive(Debug, Clone, Copy)]
    pub struct Cycle { pub muted: bool, pub generation: u64 }
    #[derive(Debug, Clone, Copy)]
    pub struct ControlSnapshot { pub hard_mute: bool, pub generation: u64, pub cycle_seq: u64, pub frames_delivered: u64, pub frames_zeroed: u64 }
    pub struct ControlBlock { muted: AtomicBool, generation: AtomicU64, cycle_seq: AtomicU64, delivered: AtomicU64, zeroed: AtomicU64 }
    impl ControlBlock {
        pub const fn new(m: bool) -> Self { Self { muted: AtomicBool::new(m), generation: AtomicU64::new(0), cycle_seq: AtomicU64::new(0), delivered: AtomicU64::new(0), zeroed: AtomicU64::new(0) } }
        pub fn is_muted(&self) -> bool { self.muted.load(Ordering::SeqCst) }
        pub fn set_muted(&self, m: bool, _s: ChangeSource, who: Authority) -> Result<u64, Refused> {
            if !m && matches!(who, Authority::Other) { return Err(Refused); }
            self.muted.store(m, Ordering::SeqCst); Ok(self.generation.fetch_add(1, Ordering::SeqCst) + 1)
        }
        pub fn wait_until_effective(&self, mut pause: impl FnMut(), max_polls: u32) -> bool {
            let s = self.cycle_seq.load(Ordering::SeqCst);
            if s & 1 == 0 { return true; }
            for _ in 0..max_polls { if self.cycle_seq.load(Ordering::SeqCst) != s { return true; } pause(); }
            false
        }
        pub fn begin_cycle(&self) -> Cycle { self.cycle_seq.fetch_add(1, Ordering::SeqCst); Cycle { muted: self.is_muted(), generation: self.generation.load(Ordering::SeqCst) } }
        pub fn end_cycle(&self, c: Cycle, frames: u64, _u: bool) {
            if c.muted { self.zeroed.fetch_add(frames, Ordering::Relaxed); } else { self.delivered.fetch_add(frames, Ordering::Relaxed); }
            self.cycle_seq.fetch_add(1, Ordering::SeqCst);
        }
        pub fn snapshot(&self) -> ControlSnapshot { ControlSnapshot { hard_mute: self.is_muted(), generation: self.generation.load(Ordering::SeqCst), cycle_seq: self.cycle_seq.load(Ordering::SeqCst), frames_delivered: self.delivered.load(Ordering::Relaxed), frames_zeroed: self.zeroed.load(Ordering::Relaxed) } }
    }
}
pub mod gate {
    pub const DEFAULT_FADE_MS: u32 = 5;
    pub fn fade_frames_for(rate: u32, ms: u32) -> u32 { rate / 1000 * ms }
    pub struct Gate { _f: u32 }
    impl Gate { pub const fn new(f: u32) -> Self { Self { _f: f } } }
}
pub mod deliver {
    use super::{control::ControlBlock, gate::Gate};
    pub fn deliver_from_input(ctl: &ControlBlock, _g: &mut Gate, input: Option<&[f32]>, out: &mut [f32], channels: usize) {
        let c = ctl.begin_cycle();
        match input { Some(i) if !c.muted => { for (o, s) in out.iter_mut().zip(i.iter().chain(core::iter::repeat(&0.0))) { *o = *s; } } _ => out.fill(0.0) }
        ctl.end_cycle(c, (out.len() / channels.max(1)) as u64, input.is_none());
    }
}
