//! Where the audio an app receives comes from. The simulated backend runs the real core path in
//! process and provides every condition; a real backend (Linux PipeWire) provides the conditions
//! a real system can produce — (a) and (b) — and the run takes the positive controls, which
//! need a deliberately broken path, from the simulation.

use crate::activity::Clip;
use crate::sim::{self, AppCapture, Condition, SimConfig};

#[cfg(target_os = "linux")]
pub mod linux;

pub trait Backend {
    fn name(&self) -> String;
    fn supports(&self, condition: Condition) -> bool;
    /// Plays every clip and returns what the app received, one capture per clip, in order.
    fn capture_all(
        &mut self,
        condition: Condition,
        clips: &[Clip],
    ) -> Result<Vec<AppCapture>, String>;
    /// True when arrival times come from a virtual clock (exactly reproducible), so the
    /// timing part of the reports must be bit-identical too; false for wall-clock backends,
    /// whose timing is judged by the KS tests only.
    fn timing_is_deterministic(&self) -> bool;
}

/// The in-process backend (see [`crate::sim`]).
pub struct Simulated {
    cfg: SimConfig,
}

impl Simulated {
    pub fn new(cfg: SimConfig) -> Self {
        Simulated { cfg }
    }
}

impl Backend for Simulated {
    fn name(&self) -> String {
        "simulated".into()
    }
    fn supports(&self, _: Condition) -> bool {
        true
    }
    fn capture_all(
        &mut self,
        condition: Condition,
        clips: &[Clip],
    ) -> Result<Vec<AppCapture>, String> {
        Ok(clips
            .iter()
            .map(|c| sim::run_clip(condition, c, self.cfg))
            .collect())
    }
    fn timing_is_deterministic(&self) -> bool {
        true
    }
}
