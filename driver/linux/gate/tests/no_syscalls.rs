//! `run()` makes no system call, proven by the kernel: the exported LADSPA `run` is driven for
//! 3000 cycles (mute toggling, fade changes, a controller lease that lapses and comes back,
//! missing input, in-place buffers) in a forked child whose only thread runs under a seccomp
//! filter that traps every system call except `write` (the report), `exit` and `rt_sigreturn`.
//! A trapped call makes the SIGSYS handler write the call's number to the pipe and exit; the
//! parent then fails the test naming it. A control child makes one `getpid()` per cycle and must
//! be caught, so the filter is known to bite.
//!
//! Everything that legitimately makes system calls (`instantiate`: the memfd and its locator;
//! `activate`: the clock; buffer allocation) happens before the filter is installed, as in
//! PipeWire, where they run on the main thread and only `run()` runs on the data thread.
//! The child checks its output with plain arithmetic (no panic, no allocation) and sends the
//! counts to the parent, which asserts.

use core::ffi::{c_int, c_ulong, c_void};
use std::sync::atomic::{AtomicI32, Ordering};

use hardmute_core::control::{Authority, ChangeSource};
use hardmute_linux_gate::abi::{GateShm, LEASE_MS};
use hardmute_linux_gate::ladspa::{ladspa_descriptor, Descriptor, PORT_IN, PORT_OUT};

const RATE: c_ulong = 48_000;
const FRAMES: usize = 1024;
const CYCLES: usize = 3000;
/// First word of a child's report: a run that finished.
const DONE: u64 = 0x484d_444f_4e45; // "HMDONE"
/// First word of a child's report: a system call was trapped (second word: its number).
const TRAPPED: u64 = 0x484d_5452_4150; // "HMTRAP"

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7; // AUDIT_ARCH_AARCH64

/// The child's write end of the report pipe (the SIGSYS handler writes to it).
static REPORT_FD: AtomicI32 = AtomicI32::new(-1);

fn desc() -> &'static Descriptor {
    // SAFETY: descriptor 0 is a static.
    unsafe { &*ladspa_descriptor(0) }
}

/// Writes `words` to the report pipe and ends the (single-threaded) child with `exit`, the one
/// way out the filter allows (`exit_group`, what `_exit` uses, is trapped).
fn report_and_exit(words: &[u64; 8], code: c_int) -> ! {
    let fd = REPORT_FD.load(Ordering::Relaxed);
    // SAFETY: `fd` is the pipe set before the filter; `words` is a valid buffer of 64 bytes;
    // SYS_exit ends the only thread, i.e. the child process.
    unsafe {
        libc::write(fd, words.as_ptr().cast(), core::mem::size_of_val(words));
        libc::syscall(libc::SYS_exit, code);
    }
    // `exit` does not return; if it ever did, spin rather than unwind into the test harness.
    #[allow(clippy::empty_loop)]
    loop {}
}

extern "C" fn on_sigsys(_sig: c_int, info: *mut libc::siginfo_t, _ctx: *mut c_void) {
    // SAFETY: for SIGSYS from seccomp the kernel fills the `_sigsys` member of siginfo's union:
    // after si_signo, si_errno, si_code (3 x i32) and padding to 8 comes `_call_addr` (a
    // pointer), then `_syscall` (i32) at byte 24 on LP64.
    let nr = unsafe { *(info as *const u8).add(24).cast::<c_int>() };
    report_and_exit(&[TRAPPED, nr as u64, 0, 0, 0, 0, 0, 0], 3);
}

/// Allows `write`, `exit` and `rt_sigreturn` (the handler's return) for this architecture;
/// traps every other call, and any call made through another architecture's entry.
fn install_filter() -> Result<(), std::io::Error> {
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jeq = |k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    };
    let ld = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let mut prog = [
        stmt(ld, 4), // seccomp_data.arch
        jeq(AUDIT_ARCH, 1, 0),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_TRAP),
        stmt(ld, 0), // seccomp_data.nr
        jeq(libc::SYS_write as u32, 3, 0),
        jeq(libc::SYS_exit as u32, 2, 0),
        jeq(libc::SYS_rt_sigreturn as u32, 1, 0),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_TRAP),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
    ];
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_mut_ptr(),
    };
    // SAFETY: prctl with plain integer arguments; then seccomp(SET_MODE_FILTER) with a valid
    // program that outlives the call (the kernel copies it). No new privileges first, so an
    // unprivileged process may install a filter.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &fprog as *const libc::sock_fprog,
        ) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// What the child verified, sent to the parent.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    cycles: u64,
    live_exact: u64,
    muted_zeros: u64,
    expired_zeros: u64,
    ramps: u64,
    wrong: u64,
    fade_changes: u64,
}

/// The child: set up (syscalls allowed), filter, 3000 cycles, report. Never returns.
fn child(fd: c_int, with_getpid: bool) -> ! {
    REPORT_FD.store(fd, Ordering::Relaxed);
    let d = desc();
    // SAFETY: the entry points as filter-chain calls them, on the main thread (syscalls allowed).
    let h = unsafe { (d.instantiate.unwrap())(d, RATE) };
    let shm_ptr = hardmute_linux_gate::shm::shared();
    if h.is_null() || shm_ptr.is_null() {
        report_and_exit(&[0, 1, 0, 0, 0, 0, 0, 0], 5);
    }
    // SAFETY: the page stays mapped for the process's life.
    let shm: &GateShm = unsafe { &*shm_ptr };
    let input: Vec<f32> = (0..FRAMES)
        .map(|i| ((i as f32) * 0.01).sin() * 0.5 + 0.25)
        .collect();
    let mut inbuf = input.clone();
    let mut out = vec![1.0f32; FRAMES];
    // SAFETY: a live handle; the buffers outlive every run below.
    unsafe {
        (d.connect_port.unwrap())(h, PORT_IN, inbuf.as_mut_ptr());
        (d.connect_port.unwrap())(h, PORT_OUT, out.as_mut_ptr());
        (d.activate.unwrap())(h);
    }
    // SAFETY: sigaction with a zeroed struct, a valid handler and SA_SIGINFO.
    unsafe {
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = on_sigsys as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO;
        if libc::sigaction(libc::SIGSYS, &sa, core::ptr::null_mut()) != 0 {
            report_and_exit(&[0, 2, 0, 0, 0, 0, 0, 0], 5);
        }
    }
    if install_filter().is_err() {
        report_and_exit(&[0, 3, 0, 0, 0, 0, 0, 0], 5);
    }

    // ---- from here on, any system call but write/exit ends the child with a report.
    let run = d.run.unwrap();
    let connect = d.connect_port.unwrap();
    let lease_cycles = (RATE * LEASE_MS as c_ulong / 1000) as usize / FRAMES;
    let fades = [0u32, 5, 20];
    let mut c = Counts::default();
    let mut fade_ms = 0u32;
    for cycle in 0..CYCLES {
        // A controller that beats for 1000 cycles, falls silent for 400, comes back.
        let beating = !(1000..1400).contains(&(cycle % 1500));
        if beating && cycle % 5 == 0 {
            shm.beat(0, 1);
        }
        match cycle % 40 {
            0 => {
                let _ = shm
                    .control
                    .set_muted(true, ChangeSource::Cli, Authority::Owner);
            }
            10 => {
                // A new fade while muted: the next unmute ramps over it.
                fade_ms = fades[(cycle / 40) % fades.len()];
                shm.set_fade_ms(fade_ms);
                c.fade_changes += 1;
            }
            20 => {
                let _ = shm
                    .control
                    .set_muted(false, ChangeSource::Cli, Authority::Owner);
            }
            _ => {}
        }
        if with_getpid {
            // SAFETY: getpid has no preconditions (the control: the filter must trap it).
            unsafe { libc::getpid() };
        }
        let in_place = cycle % 11 == 5;
        let no_input = cycle % 7 == 3 && !in_place;
        let (inp, outp) = if in_place {
            (out.as_mut_ptr(), out.as_mut_ptr())
        } else if no_input {
            (core::ptr::null_mut(), out.as_mut_ptr())
        } else {
            (inbuf.as_mut_ptr(), out.as_mut_ptr())
        };
        if in_place {
            out.copy_from_slice(&input);
        }
        // SAFETY: a live handle and buffers of FRAMES samples, as the host guarantees.
        unsafe {
            connect(h, PORT_IN, inp);
            connect(h, PORT_OUT, outp);
            run(h, FRAMES as c_ulong);
        }
        c.cycles += 1;
        let silent_for = (cycle % 1500).saturating_sub(1000);
        let expired = !beating && silent_for > lease_cycles + 1;
        let all_zero = out.iter().all(|s| s.to_bits() == 0);
        if shm.control.is_muted() || no_input || expired {
            if !all_zero {
                c.wrong += 1;
            } else if expired {
                c.expired_zeros += 1;
            } else if !no_input {
                c.muted_zeros += 1;
            }
        } else if beating && cycle % 1500 > 5 {
            let phase = cycle % 40;
            let fade_frames = (48 * fade_ms) as usize;
            if phase == 20 && fade_frames > 0 && fade_frames < FRAMES {
                // The unmute cycle: a linear ramp over the fade, then the input.
                let ramp_ok = out.iter().zip(&input).enumerate().all(|(k, (o, i))| {
                    let gain = if k < fade_frames {
                        (k + 1) as f32 / fade_frames as f32
                    } else {
                        1.0
                    };
                    (o - i * gain).abs() <= 1e-6
                });
                if ramp_ok {
                    c.ramps += 1;
                } else {
                    c.wrong += 1;
                }
            } else if phase > 22 {
                if out.as_slice() == input.as_slice() {
                    c.live_exact += 1;
                } else {
                    c.wrong += 1;
                }
            }
        }
        inbuf.copy_from_slice(&input);
    }
    report_and_exit(
        &[
            DONE,
            c.cycles,
            c.live_exact,
            c.muted_zeros,
            c.expired_zeros,
            c.ramps,
            c.wrong,
            c.fade_changes,
        ],
        0,
    );
}

/// Forks a child running [`child`]; returns its report and how it ended.
fn run_child(with_getpid: bool) -> ([u64; 8], c_int) {
    let mut fds = [0 as c_int; 2];
    // SAFETY: pipe2 writes two fds into a valid array.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: fork; the child runs only `child`, which never returns into the harness (it ends
    // with SYS_exit), and allocates only before its filter. A panic in the child would unwind
    // into a copy of the harness: caught and turned into an exit code instead.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: the child's copy of the read end is not used.
        unsafe { libc::close(fds[0]) };
        let _ = std::panic::catch_unwind(|| child(fds[1], with_getpid));
        report_and_exit(&[0, 4, 0, 0, 0, 0, 0, 0], 6);
    }
    // SAFETY: the parent's copy of the write end is closed so EOF arrives when the child ends.
    unsafe { libc::close(fds[1]) };
    let mut report = [0u64; 8];
    let mut got = 0usize;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let mut pfd = libc::pollfd {
            fd: fds[0],
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, 1000) };
        if r > 0 {
            let bytes = 64 - got;
            // SAFETY: reads at most the rest of `report`'s 64 bytes into it.
            let n = unsafe {
                libc::read(
                    fds[0],
                    (report.as_mut_ptr() as *mut u8).add(got).cast(),
                    bytes,
                )
            };
            if n <= 0 {
                break;
            }
            got += n as usize;
            if got == 64 {
                break;
            }
        }
        if std::time::Instant::now() > deadline {
            // SAFETY: the child is ours.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            break;
        }
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    unsafe {
        libc::waitpid(pid, &mut status, 0);
        libc::close(fds[0]);
    }
    (report, status)
}

#[test]
fn run_makes_no_system_call_under_seccomp() {
    let runtime = std::env::temp_dir().join(format!("hm-gate-seccomp-{}", std::process::id()));
    std::fs::create_dir_all(&runtime).unwrap();
    std::env::set_var("XDG_RUNTIME_DIR", &runtime);

    // Control: a child that makes one getpid() per cycle is caught at the first one.
    let (report, status) = run_child(true);
    assert_eq!(
        report[..2],
        [TRAPPED, libc::SYS_getpid as u64],
        "the filter did not trap getpid (status {status:#x}, report {report:x?})"
    );
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 3);

    // The gate: 3000 cycles, no trap.
    let (r, status) = run_child(false);
    assert_ne!(
        r[0], TRAPPED,
        "run() made system call {} under seccomp",
        r[1]
    );
    assert_eq!(
        r[0], DONE,
        "the child did not finish: status {status:#x}, report {r:x?}"
    );
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    let [_, cycles, live_exact, muted_zeros, expired_zeros, ramps, wrong, fade_changes] = r;
    eprintln!(
        "{cycles} cycles under seccomp: {live_exact} exact passthrough, {muted_zeros} muted \
         zeros, {expired_zeros} lapsed-lease zeros, {ramps} unmute ramps, {fade_changes} fade \
         changes, {wrong} wrong"
    );
    assert_eq!(cycles, CYCLES as u64);
    assert_eq!(wrong, 0, "a cycle delivered the wrong samples");
    assert!(live_exact > 500 && muted_zeros > 500 && expired_zeros > 200);
    assert!(ramps >= 20, "unmute ramps checked: {ramps}");
    assert!(fade_changes >= 70);
    let _ = std::fs::remove_dir_all(&runtime);
}
