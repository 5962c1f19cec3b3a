//! Everything the driver takes from the DDK: generated bindings (one of two sources), a few
//! imports the mingw-w64 headers lack, the inline helpers the headers define as macros, and
//! the size/offset assertions both binding sets must pass.
#![allow(dead_code)]

#[cfg(feature = "mingw-ddk")]
#[allow(unsafe_op_in_unsafe_fn, clippy::all, clippy::undocumented_unsafe_blocks, unnecessary_transmutes)]
#[rustfmt::skip]
mod bindings;
#[cfg(feature = "mingw-ddk")]
pub use bindings::*;

#[cfg(all(feature = "wdk", not(feature = "mingw-ddk")))]
#[allow(
    non_upper_case_globals,
    non_camel_case_types,
    non_snake_case,
    dead_code,
    clippy::all
)]
mod bindings {
    include!(concat!(env!("OUT_DIR"), "/wdk_bindings.rs"));
}
#[cfg(all(feature = "wdk", not(feature = "mingw-ddk")))]
pub use bindings::*;

#[cfg(not(any(feature = "mingw-ddk", feature = "wdk")))]
compile_error!("enable one binding source: feature `mingw-ddk` (default) or `wdk`");

pub mod access;
pub mod extra;
mod layout;
