//! macOS: the HAL's default input device, by UID (HardMute's is the plug-in's mic UID). The
//! decisions are hardmuted's `default_input` policy; this only reads and sets.

use crate::{macos as hal, policy};
use hardmute_backend::DefaultInputOs;

pub struct MacDefault;

impl DefaultInputOs for MacDefault {
    fn current(&mut self) -> Result<Option<String>, String> {
        let inputs = hal::input_devices().map_err(|e| format!("{e:?}"))?;
        Ok(inputs.into_iter().find(|d| d.is_default).map(|d| d.uid))
    }
    fn set(&mut self, uid: &str) -> Result<(), String> {
        let inputs = hal::input_devices().map_err(|e| format!("{e:?}"))?;
        let device = inputs
            .iter()
            .find(|d| d.uid == uid)
            .ok_or_else(|| format!("no input device with UID {uid:?}"))?;
        hal::set_default_input(device.id).map_err(|e| format!("{e:?}"))
    }
    fn hardmute_id(&self) -> &str {
        policy::MIC_UID
    }
}
