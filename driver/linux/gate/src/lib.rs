//! The HardMute gate inside the PipeWire server.
//!
//! A LADSPA plugin (this crate's `cdylib`, `libhardmute_linux_gate.so`) that PipeWire's own
//! `libpipewire-module-filter-chain` hosts, loaded by a `pipewire.conf.d` drop-in
//! ([`dropin`]). filter-chain builds two nodes: a capture stream `hardmute_capture` (passive:
//! the physical mic runs only while an app records) that the physical source links into, and
//! the node apps record from, `hardmute_mic` ("HardMute Microphone"), which has no input port:
//! nothing can be linked in after the gate. Both exist whenever PipeWire runs.
//!
//! - [`abi`]: the shared page (the core's `ControlBlock` + the controller lease) and its
//!   locator: the contract hardmuted imports.
//! - [`rt`]: one cycle of one instance (lease, cycle fence, core gate, level), plain safe code.
//! - [`ladspa`]: the hand-written LADSPA ABI and the guarded entry points.
//! - [`shm`]: creating, sealing and publishing the page (off the realtime path).
//! - [`dropin`]: the drop-in `hardmute install` writes and the e2e rig loads.
//! - [`server`]: which process the PipeWire server is (its socket's peer credentials): the
//!   gate's nodes are the ones that process made, whatever other nodes call themselves.
#![forbid(unsafe_op_in_unsafe_fn)]

pub mod abi;
pub mod dropin;
pub mod ladspa;
pub mod rt;
pub mod server;
pub mod shm;
