//! Not Linux: there is no XDG desktop portal. The same API, always [`PortalError::Unsupported`],
//! so callers need no cfg of their own.

// On Linux this is only built for its test, which does not call every method.
#![cfg_attr(target_os = "linux", allow(dead_code))]

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_says_unsupported() {
        assert_eq!(probe(), Err(PortalError::Unsupported));
        assert_eq!(
            PortalShortcuts::start("Ctrl+Alt+M", |_| {}).unwrap_err(),
            PortalError::Unsupported
        );
        assert_eq!(
            PortalShortcuts::start_with(PortalConfig::new("Ctrl+Alt+M"), |_| {}).unwrap_err(),
            PortalError::Unsupported
        );
    }
}
