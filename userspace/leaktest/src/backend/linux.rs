//! The real Linux backend (PipeWire). Placeholder until written.
pub struct PipeWire;
impl PipeWire {
    pub fn from_env() -> Result<crate::backend::Simulated, String> {
        Err("not yet".into())
    }
}
