//! Windows: the default capture endpoint of all three roles, through [`crate::policy_config`]'s
//! IPolicyConfig wrapper. HardMute's id is its endpoint id (found by the friendly-name marker).
//! The decisions are hardmuted's `default_input` policy; this only reads and sets.

use crate::policy::VIRTUAL_MIC_MARKER;
use crate::{policy_config, ComApartment};
use hardmute_backend::DefaultInputOs;

pub struct WindowsDefault {
    hardmute: String,
}

fn com<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    // Called from the daemon's poll and connection threads: join the MTA for the call.
    let _com = ComApartment::multithreaded().map_err(|e| e.to_string())?;
    f()
}

impl WindowsDefault {
    /// `None` when the HardMute Microphone endpoint is not there (driver not installed).
    pub fn find() -> Option<Self> {
        let id =
            com(|| policy_config::endpoint_named(VIRTUAL_MIC_MARKER).map_err(|e| e.to_string()));
        match id {
            Ok(Some(hardmute)) => Some(WindowsDefault { hardmute }),
            Ok(None) => None,
            Err(e) => {
                log::warn!("cannot look for the HardMute Microphone endpoint: {e}");
                None
            }
        }
    }
}

impl DefaultInputOs for WindowsDefault {
    fn current(&mut self) -> Result<Option<String>, String> {
        let per_role = com(|| policy_config::default_capture_ids().map_err(|e| e.to_string()))?;
        Ok(policy_config::effective_default(&per_role, &self.hardmute))
    }
    fn set(&mut self, name: &str) -> Result<(), String> {
        com(|| policy_config::set_default_capture(name).map_err(|e| e.to_string()))
    }
    fn hardmute_id(&self) -> &str {
        &self.hardmute
    }
}
