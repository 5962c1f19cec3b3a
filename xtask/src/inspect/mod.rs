//! Binary inspection for the cross-checks: exact assertions on linked Mach-O and PE images.

pub mod macho;
pub mod pe;
