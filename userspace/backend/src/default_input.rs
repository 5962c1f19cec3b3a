//! The OS side of HardMute as the default input: each OS backend crate reads and sets its
//! OS's default input through a [`DefaultInputOs`]; hardmuted's `default_input` module makes
//! every decision (docs/design.md invariant 7).

/// The OS side: reads and sets the default input. Implementations talk to the audio server
/// (PipeWire metadata, the HAL, IPolicyConfig); every decision is made by hardmuted's
/// `default_input` policy.
pub trait DefaultInputOs: Send {
    /// The OS's default input now (stable id), `None` = none.
    fn current(&mut self) -> Result<Option<String>, String>;
    /// Makes `name` the default input (for every role the OS has).
    fn set(&mut self, name: &str) -> Result<(), String>;
    /// HardMute Microphone's stable id on this OS.
    fn hardmute_id(&self) -> &str;
}
