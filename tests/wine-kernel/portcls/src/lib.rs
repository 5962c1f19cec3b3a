//! A stand-in for `portcls.sys` under Wine, for `cargo xtask cross-check windows-kernel` only
//! (never shipped). Wine has no PortCls; this DLL is copied beside the HardMute driver so
//! Wine's loader resolves the driver's `portcls.sys` imports to it.
//!
//! - [`port`]: the `Pc*` exports the driver imports and the port objects PortCls hands a
//!   miniport (`IPort`, `IPortWaveRT`, `IPortWaveRTStream`, `IResourceList`), as the WDK
//!   documents them.
//! - [`gaps`]: kernel functions the driver imports that Wine 8.0 lacks or stubs, filled by
//!   writing the loaded driver image's import address table in memory (the `.sys` file is
//!   byte-for-byte the shipped one). Each fill is written to the log.
//! - [`bridge_hook`]: the bridge ring as a named section under Wine (the driver's
//!   IRP_MJ_DEVICE_CONTROL entry wrapped in memory; REGISTER_BRIDGE's MDL mapping replaced),
//!   and [`audio`]: a known signal from the bridge through the driver's cyclic buffer.
//! - [`log`]: one line per event in `C:\hardmute-portcls.log` inside the Wine prefix, read
//!   by the xtask stage.
//!
//! This is user-mode code inside Wine's `winedevice.exe`: it may call kernel32/advapi32,
//! which a real kernel image never could. It encodes our reading of PortCls's documented
//! contract, not PortCls itself.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![allow(clippy::missing_safety_doc)]

// The driver's own bindings and layout assertions (the same types the driver was built with).
#[path = "../../../../driver/windows/kernel/src/ddk/mod.rs"]
#[allow(unused_imports)]
mod ddk;
#[path = "../../../../driver/windows/kernel/src/guids.rs"]
#[allow(dead_code)]
mod guids;

#[macro_use]
mod log;
mod audio;
mod bridge_hook;
mod drive;
mod gaps;
mod port;
mod win32;

/// MSVC's floating-point marker (no CRT here).
#[no_mangle]
#[used]
pub static _fltused: i32 = 0;

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    say!("stand-in PANIC: {}", info);
    // SAFETY: ends winedevice; the stage sees the missing lines and the exit.
    unsafe { win32::ExitProcess(70) }
}

/// The DLL entry point (`/ENTRY:DllEntry`): nothing to do at load; Wine may or may not call
/// it for a native-subsystem DLL.
#[no_mangle]
pub extern "system" fn DllEntry(_module: *mut u8, _reason: u32, _reserved: *mut u8) -> i32 {
    1
}
