//! A stand-in controller for the module probe (tests/e2e-linux/module-probe.sh): maps the gate's
//! page through its locator (`$XDG_RUNTIME_DIR/hardmute/gate`), unmutes, and beats the lease
//! every `BEAT_MS` for the given number of seconds, then exits without releasing (the lease then
//! lapses and the gate gives zeros again). hardmuted is the real controller; it looks for the
//! shipped filter-chain nodes, not the prototype's, so the probe uses this instead.
//!
//! Usage: page_ctl SECONDS | page_ctl --status (print the page's counters, write nothing)

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use hardmute_core::control::{Authority, ChangeSource};
use hardmute_linux_gate::abi::{
    monotonic_ns, GateShm, BEAT_MS, LOCATOR_DIR, LOCATOR_NAME, SHM_SIZE,
};

fn main() -> Result<(), String> {
    let arg = std::env::args().nth(1).unwrap_or_default();
    let status_only = arg == "--status";
    let secs: u64 = if status_only {
        0
    } else {
        arg.parse()
            .map_err(|_| "usage: page_ctl SECONDS | --status")?
    };
    let runtime = std::env::var("XDG_RUNTIME_DIR").map_err(|_| "XDG_RUNTIME_DIR unset")?;
    let locator = format!("{runtime}/{LOCATOR_DIR}/{LOCATOR_NAME}");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&locator)
        .map_err(|e| format!("{locator}: {e}"))?;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    if len != SHM_SIZE as u64 {
        return Err(format!("{locator}: {len} bytes, not a gate page"));
    }
    // SAFETY: a shared mapping of the whole (sealed, fixed-size) page; checked below.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            SHM_SIZE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err("mmap failed".into());
    }
    // SAFETY: the page is at least size_of::<GateShm>() bytes, page-aligned, and only ever
    // accessed through GateShm's atomics; it stays mapped until the process exits.
    let shm = unsafe { &*p.cast::<GateShm>() };
    if !shm.control.header_ok() {
        return Err("the page's header is not one this controller knows".into());
    }
    if status_only {
        let (peak, _, windows) = shm.level();
        println!(
            "status level_windows={windows} last_peak={peak} {:?}",
            shm.control.snapshot()
        );
        return Ok(());
    }
    shm.control
        .set_muted(false, ChangeSource::Cli, Authority::Owner)
        .map_err(|e| format!("unmute: {e:?}"))?;
    println!("live level_windows={}", shm.level().2);
    let pid = std::process::id();
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        shm.beat(monotonic_ns(), pid);
        std::thread::sleep(Duration::from_millis(BEAT_MS));
    }
    // The gate meters every 50 ms window it delivered: a count that moved proves its cycles ran.
    let (peak, _, windows) = shm.level();
    println!(
        "done level_windows={windows} last_peak={peak} {:?}",
        shm.control.snapshot()
    );
    Ok(())
}
