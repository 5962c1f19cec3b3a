//! `wine-kernel-probe`: run by `cargo xtask cross-check windows-kernel` inside a private Wine
//! prefix. It installs the shipped HardMute driver as a kernel service (as Wine's own
//! `dlls/ntoskrnl.exe/tests` do: CreateService SERVICE_KERNEL_DRIVER + StartService), then
//! talks to `\\.\HardMuteControl` through the daemon's own client code
//! (`hardmute_backend_windows::control_device`) and raw `DeviceIoControl` for the malformed
//! requests.
//!
//! Output: one `ok <check>: ...` or `FAIL <check>: ...` line per check; the exit status is
//! the number of failures (capped at 100), 0 when all passed. A Windows-only program.

#[cfg(windows)]
mod audio;
#[cfg(windows)]
mod probe;

#[cfg(windows)]
fn main() {
    std::process::exit(probe::main());
}

#[cfg(not(windows))]
fn main() {
    eprintln!("wine-kernel-probe is a Windows program (run under Wine by cargo xtask cross-check windows-kernel)");
    std::process::exit(2);
}
