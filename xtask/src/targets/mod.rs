//! One module per cross-check stage.

pub mod core;
pub mod selftest;
