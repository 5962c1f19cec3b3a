//! Not Linux: there is no XDG desktop portal. The same API, always [`PortalError::Unsupported`],
//! so callers need no cfg of their own.

use crate::{BoundShortcut, PortalConfig, PortalError, PortalInfo, ShortcutEvent};

pub fn probe() -> Result<PortalInfo, PortalError> {
    Err(PortalError::Unsupported)
}

#[derive(Debug)]
pub struct PortalShortcuts {
    _private: (),
}

impl PortalShortcuts {
    pub fn start(
        _trigger: &str,
        _on_event: impl Fn(ShortcutEvent) + Send + 'static,
    ) -> Result<Self, PortalError> {
        Err(PortalError::Unsupported)
    }

    pub fn start_with(
        _config: PortalConfig,
        _on_event: impl Fn(ShortcutEvent) + Send + 'static,
    ) -> Result<Self, PortalError> {
        Err(PortalError::Unsupported)
    }

    pub fn version(&self) -> u32 {
        0
    }

    pub fn bound(&self) -> &[BoundShortcut] {
        &[]
    }

    pub fn stop(self) {}
}
