//! The shim's macOS semantics, without any Mach-O file: layouts and signatures of the pthread
//! objects, errno and clock-id numbering, the settable Mach clock, the CF shim over the fake, the
//! call counters, and the named trap for an unknown import.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

use std::ptr::{null, null_mut};

use hardmute_macos_loader::shim::libsystem::{self as sys, errno, MacCond, MacMutex, MacTimespec};
use hardmute_macos_loader::shim::{self, cf, Category, Counts, Lib, S};
use hardmute_macos_plugin::cf::fake;

fn static_mutex() -> MacMutex {
    // PTHREAD_MUTEX_INITIALIZER on macOS: {_PTHREAD_MUTEX_SIG_init, {0}}.
    MacMutex {
        sig: sys::MUTEX_SIG_INIT,
        opaque: [0; 56],
    }
}

#[test]
fn pthread_mutex_in_macos_layout() {
    // SAFETY: every shim call gets pointers to live objects of this test, of the types and
    // sizes its macOS namesake takes (and CF references from the fake or null).
    unsafe {
        assert_eq!(std::mem::size_of::<MacMutex>(), 64);
        let mut m = static_mutex();
        assert_eq!(sys::pthread_mutex_lock(&mut m), 0);
        assert_eq!(
            m.sig,
            sys::MUTEX_SIG,
            "the static initialiser becomes an initialised mutex"
        );
        assert_eq!(sys::pthread_mutex_trylock(&mut m), errno::EBUSY);
        assert_eq!(sys::pthread_mutex_unlock(&mut m), 0);
        assert_eq!(sys::pthread_mutex_trylock(&mut m), 0);
        assert_eq!(
            sys::pthread_mutex_destroy(&mut m),
            errno::EBUSY,
            "destroying a held mutex"
        );
        assert_eq!(sys::pthread_mutex_unlock(&mut m), 0);
        assert_eq!(sys::pthread_mutex_destroy(&mut m), 0);

        // What std does: attr init/settype(NORMAL)/init.
        let mut attr = sys::MacMutexAttr {
            sig: 0,
            opaque: [0; 8],
        };
        assert_eq!(
            sys::pthread_mutexattr_settype(&mut attr, 0),
            errno::EINVAL,
            "attr not initialised"
        );
        assert_eq!(sys::pthread_mutexattr_init(&mut attr), 0);
        assert_eq!(sys::pthread_mutexattr_settype(&mut attr, 0), 0);
        let mut m = MacMutex {
            sig: 0x1234,
            opaque: [0xFF; 56],
        };
        assert_eq!(sys::pthread_mutex_init(&mut m, &attr), 0);
        assert_eq!(m.sig, sys::MUTEX_SIG);
        assert_eq!(sys::pthread_mutex_lock(&mut m), 0);
        assert_eq!(sys::pthread_mutex_unlock(&mut m), 0);
    }
}

#[test]
fn a_condition_times_out_with_macos_etimedout_and_wakes_a_waiter() {
    // SAFETY: every shim call gets pointers to live objects of this test, of the types and
    // sizes its macOS namesake takes (and CF references from the fake or null).
    unsafe {
        let mut m = static_mutex();
        let mut c = MacCond {
            sig: sys::COND_SIG_INIT,
            opaque: [0; 40],
        };
        assert_eq!(std::mem::size_of::<MacCond>(), 48);
        assert_eq!(sys::pthread_mutex_lock(&mut m), 0);
        let rel = MacTimespec {
            tv_sec: 0,
            tv_nsec: 20_000_000,
        };
        assert_eq!(
            sys::pthread_cond_timedwait_relative_np(&mut c, &mut m, &rel),
            60
        );
        assert_eq!(errno::ETIMEDOUT, 60);
        assert_eq!(sys::mac_errno(libc::ETIMEDOUT), 60);
        // Absolute deadline in the past: times out at once, mutex still held afterwards.
        let past = MacTimespec {
            tv_sec: 1,
            tv_nsec: 0,
        };
        assert_eq!(sys::pthread_cond_timedwait(&mut c, &mut m, &past), 60);
        assert_eq!(sys::pthread_mutex_trylock(&mut m), errno::EBUSY);
        assert_eq!(sys::pthread_mutex_unlock(&mut m), 0);

        // A waiter is woken by a signal from another thread.
        struct Shared(MacMutex, MacCond, bool);
        let shared = Box::leak(Box::new(Shared(static_mutex(), c, false)));
        let addr = shared as *mut Shared as usize;
        let waiter = std::thread::spawn(move || {
            // SAFETY: the leaked box lives forever; the pthread protocol guards `.2`.
            let s = &mut *(addr as *mut Shared);
            assert_eq!(sys::pthread_mutex_lock(&mut s.0), 0);
            while !s.2 {
                assert_eq!(sys::pthread_cond_wait(&mut s.1, &mut s.0), 0);
            }
            assert_eq!(sys::pthread_mutex_unlock(&mut s.0), 0);
        });
        std::thread::sleep(std::time::Duration::from_millis(20));
        // SAFETY: as above.
        let s = &mut *(addr as *mut Shared);
        assert_eq!(sys::pthread_mutex_lock(&mut s.0), 0);
        s.2 = true;
        assert_eq!(sys::pthread_cond_signal(&mut s.1), 0);
        assert_eq!(sys::pthread_mutex_unlock(&mut s.0), 0);
        waiter.join().unwrap();
    }
}

#[test]
fn dispatch_semaphores_count_and_time_out() {
    // SAFETY: every shim call gets pointers to live objects of this test, of the types and
    // sizes its macOS namesake takes (and CF references from the fake or null).
    unsafe {
        let s = sys::dispatch_semaphore_create(1);
        assert_eq!(sys::dispatch_semaphore_wait(s, !0), 0);
        let soon = sys::dispatch_time(0, 10_000_000);
        assert_ne!(
            sys::dispatch_semaphore_wait(s, soon),
            0,
            "count 0: times out"
        );
        sys::dispatch_semaphore_signal(s);
        assert_eq!(sys::dispatch_semaphore_wait(s, sys::dispatch_time(0, 0)), 0);
        sys::dispatch_release(s);
    }
}

#[test]
fn errno_and_clock_ids_use_macos_numbers() {
    // SAFETY: every shim call gets pointers to live objects of this test, of the types and
    // sizes its macOS namesake takes (and CF references from the fake or null).
    unsafe {
        let mut ts = MacTimespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // CLOCK_UPTIME_RAW = 8 on macOS (on Linux 8 is CLOCK_REALTIME_ALARM).
        assert_eq!(sys::clock_gettime(8, &mut ts), 0);
        let mut real = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: valid out-pointer.
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut real);
        assert!(
            (real.tv_sec - ts.tv_sec).abs() <= 1,
            "uptime clock is the monotonic one"
        );
        assert_eq!(sys::linux_clock(0), Some(libc::CLOCK_REALTIME));
        assert_eq!(sys::linux_clock(6), Some(libc::CLOCK_BOOTTIME));
        // An id macOS does not have: -1 and EINVAL in the thread's errno, read through ___error.
        assert_eq!(sys::clock_gettime(3, &mut ts), -1);
        // SAFETY: ___error returns this thread's errno slot.
        assert_eq!(*sys::error_location(), errno::EINVAL);
        assert_eq!(sys::mac_errno(libc::EAGAIN), 35);
        assert_eq!(sys::mac_errno(libc::EDEADLK), 11);
        assert_eq!(sys::mac_errno(libc::EINVAL), 22);
        // write to a closed fd: EBADF (9 on both).
        assert_eq!(sys::write(-1, b"x".as_ptr().cast(), 1), -1);
        assert_eq!(sys::last_errno(), errno::EBADF);
    }
}

#[test]
fn the_mach_clock_is_set_by_hand_and_counted() {
    // SAFETY: every shim call gets pointers to live objects of this test, of the types and
    // sizes its macOS namesake takes (and CF references from the fake or null).
    unsafe {
        let before = Counts::now();
        sys::set_mach_time(77);
        assert_eq!(sys::mach_absolute_time(), 77);
        sys::advance_mach_time(3);
        assert_eq!(sys::mach_absolute_time(), 80);
        let mut tb = sys::MachTimebaseInfo { numer: 0, denom: 0 };
        assert_eq!(sys::mach_timebase_info(&mut tb), 0);
        assert_eq!((tb.numer, tb.denom), (125, 3), "24 MHz");
        let after = Counts::now();
        assert!(after.of(S::mach_absolute_time) >= before.of(S::mach_absolute_time) + 2);
        assert!(after.category_since(&before, Category::Clock) >= 3);
    }
}

#[test]
fn the_cf_shim_is_the_plugins_cf_fake() {
    // SAFETY: every shim call gets pointers to live objects of this test, of the types and
    // sizes its macOS namesake takes (and CF references from the fake or null).
    unsafe {
        let _ = shim::table(); // fills kCFBooleanTrue/False
        let t = cf::K_CF_BOOLEAN_TRUE.load(std::sync::atomic::Ordering::SeqCst)
            as hardmute_macos_plugin::abi::CFTypeRef;
        assert_eq!(cf::CFGetTypeID(t), cf::BOOLEAN_TYPE_ID);
        assert_eq!(cf::CFBooleanGetValue(t), 1);
        let s = cf::CFStringCreateWithBytes(null(), b"hi".as_ptr(), 2, 0x0800_0100, 0);
        assert_eq!(fake::string_value(s).as_deref(), Some("hi"));
        assert_eq!(cf::CFGetTypeID(s), cf::STRING_TYPE_ID);
        assert_eq!(cf::CFRetain(s), s);
        assert_eq!(fake::ref_count(s), 2);
        cf::CFRelease(s);
        cf::CFRelease(s);
        assert!(
            cf::CFStringCreateWithBytes(null(), [0xFFu8].as_ptr(), 1, 0x0800_0100, 0).is_null()
        );
        let n = fake::number(-5);
        let mut v = 0i64;
        assert_eq!(cf::CFNumberGetValue(n, 4, (&mut v as *mut i64).cast()), 1);
        assert_eq!(v, -5);
        let mut small = 0i8;
        let big = fake::number(300);
        assert_eq!(
            cf::CFNumberGetValue(big, 1, (&mut small as *mut i8).cast()),
            0,
            "lossy"
        );
        cf::CFRelease(n);
        cf::CFRelease(big);
        let u = fake::uuid([9; 16]);
        assert_eq!(cf::CFUUIDGetUUIDBytes(u).bytes, [9; 16]);
        cf::CFRelease(u);
    }
}

#[test]
fn the_os_log_shim_decodes_records_into_the_plugins_os_log_fake() {
    use hardmute_macos_loader::shim::oslog;
    use hardmute_macos_plugin::oslog::fake as oslog_fake;
    // SAFETY: every shim call gets live C strings and a buffer of the size passed, whose string
    // argument is live for the call.
    unsafe {
        let before = Counts::now();
        let log = oslog::os_log_create(c"org.hardmute.driver".as_ptr(), c"shim-test".as_ptr());
        assert!(!log.is_null());
        assert!(oslog::os_log_type_enabled(log, 0x10));
        assert!(
            !oslog::os_log_type_enabled(log, 0x02),
            "debug is off, as on macOS"
        );
        // `os_log(log, "%{public}s", "shim record 31")` as clang encodes it, written out by hand.
        let text = c"shim record 31";
        let mut buf = vec![0x02u8, 0x01, 0x22, 0x08];
        buf.extend_from_slice(&(text.as_ptr() as u64).to_le_bytes());
        let dso = 0x1000usize as *const std::ffi::c_void;
        oslog::os_log_impl(dso, log, 0x10, c"%{public}s".as_ptr(), buf.as_ptr(), 12);
        // A buffer that lies about its count decodes to an error, not to a message.
        buf[1] = 2;
        oslog::os_log_impl(dso, log, 0x00, c"%{public}s".as_ptr(), buf.as_ptr(), 12);
        let after = Counts::now();
        assert_eq!(after.category_since(&before, Category::Log), 5);
        let mine: Vec<_> = oslog_fake::records()
            .into_iter()
            .filter(|r| r.category == "shim-test")
            .collect();
        assert_eq!(mine.len(), 2, "{mine:?}");
        assert_eq!(mine[0].subsystem, "org.hardmute.driver");
        assert_eq!((mine[0].ty, mine[0].dso, mine[0].size), (0x10, 0x1000, 12));
        assert_eq!(mine[0].text.as_deref(), Ok("shim record 31"));
        assert!(mine[1]
            .text
            .as_ref()
            .unwrap_err()
            .contains("header counts 2"));
    }
}

#[test]
fn every_pinned_import_is_implemented_or_panic_only() {
    use hardmute_macos_loader::shim::PANIC_ONLY_IMPORTS as PANIC_ONLY;
    let list = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../driver/macos/plugin/imports/x86_64.txt"
    ))
    .expect("driver/macos/plugin/imports/x86_64.txt (the pinned imports)");
    let mut missing = Vec::new();
    let mut lines = 0;
    for line in list
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (symbol, library) = line.split_once(' ').expect("`<symbol> <library>`");
        let lib = match library {
            "libSystem" => Lib::System,
            "CoreFoundation" => Lib::CoreFoundation,
            other => panic!("{symbol} from {other}: the plug-in may link only libSystem and CF"),
        };
        lines += 1;
        let implemented = shim::table()
            .iter()
            .any(|e| e.name == symbol && e.lib == lib);
        if !implemented && !PANIC_ONLY.contains(&symbol) {
            missing.push(symbol.to_owned());
        }
        if implemented {
            assert!(!PANIC_ONLY.contains(&symbol), "{symbol} is implemented now");
        }
    }
    assert!(lines > 50, "only {lines} pinned imports");
    assert!(
        missing.is_empty(),
        "pinned imports the shim lacks: {missing:?}"
    );
}

#[test]
fn an_unknown_import_aborts_naming_it() {
    if std::env::var_os("HM_LOADER_TRAP_CHILD").is_some() {
        let r = shim::resolve("_no_such_function", Lib::System.install_name());
        assert!(!r.implemented);
        // SAFETY: the trap stub takes no arguments and never returns.
        let f: extern "C" fn() = unsafe { std::mem::transmute::<usize, extern "C" fn()>(r.addr) };
        f();
        unreachable!("the trap returned");
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "an_unknown_import_aborts_naming_it",
            "--nocapture",
        ])
        .env("HM_LOADER_TRAP_CHILD", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the trap did not stop the process");
    assert!(
        stderr.contains("the plug-in called `_no_such_function (from /usr/lib/libSystem.B.dylib)`"),
        "{stderr}"
    );
    let _ = null_mut::<u8>();
}

#[repr(C)]
struct Descriptor {
    thunk: usize,
    key: usize,
    offset: usize,
}

/// Calls the TLV thunk the way Apple-target code does (`mov rdi, desc; call [rdi]`), with every
/// other caller-saved register holding a marker that must survive the call.
fn tlv_call(d: &Descriptor) -> (usize, [usize; 8], [f64; 3]) {
    let addr: usize;
    let (mut rdi, mut rsi, mut rdx, mut rcx) = (
        d as *const Descriptor as usize,
        0x51usize,
        0x52usize,
        0x53usize,
    );
    let (mut r8, mut r9, mut r10, mut r11) = (0x58usize, 0x59usize, 0x5Ausize, 0x5Busize);
    let (mut x0, mut x7, mut x15) = (1.5f64, 7.25f64, -15.5f64);
    let desc = rdi;
    // SAFETY: `d` is a descriptor whose thunk is the loader's tlv_get_addr, which returns in rax
    // and preserves every other register (checked below); the stack may be used (no `nostack`).
    unsafe {
        std::arch::asm!(
            "call qword ptr [rdi]",
            inout("rdi") rdi, inout("rsi") rsi, inout("rdx") rdx, inout("rcx") rcx,
            inout("r8") r8, inout("r9") r9, inout("r10") r10, inout("r11") r11,
            inout("xmm0") x0, inout("xmm7") x7, inout("xmm15") x15,
            out("rax") addr,
        );
    }
    assert_eq!(rdi, desc, "rdi clobbered");
    (
        addr,
        [rdi - desc, rsi, rdx, rcx, r8, r9, r10, r11],
        [x0, x7, x15],
    )
}

#[test]
fn thread_local_variables_get_a_per_thread_copy_of_the_template_and_keep_registers() {
    use hardmute_macos_loader::tlv;
    let key = tlv::register_image(vec![10, 11, 12, 13, 0, 0, 0, 0]);
    let d = Descriptor {
        thunk: tlv::get_addr_thunk(),
        key,
        offset: 2,
    };
    let (addr, gprs, xmms) = tlv_call(&d);
    assert_eq!(
        gprs,
        [0, 0x51, 0x52, 0x53, 0x58, 0x59, 0x5A, 0x5B],
        "GPRs not preserved"
    );
    assert_eq!(xmms, [1.5, 7.25, -15.5], "xmm registers not preserved");
    // SAFETY: the thunk returned the address of byte 2 of this thread's 8-byte block.
    assert_eq!(unsafe { *(addr as *const u8) }, 12);
    // SAFETY: as above; the block is this thread's own.
    unsafe { *(addr as *mut u8) = 99 };
    let (again, _, _) = tlv_call(&d);
    assert_eq!(again, addr, "one block per thread");
    let d_addr = &d as *const Descriptor as usize;
    let other = std::thread::spawn(move || {
        // SAFETY: `d` outlives the joined thread.
        let d = unsafe { &*(d_addr as *const Descriptor) };
        let (a, _, _) = tlv_call(d);
        // SAFETY: as above, on that thread's block.
        (a, unsafe { *(a as *const u8) })
    })
    .join()
    .unwrap();
    assert_ne!(other.0, addr, "another thread gets its own block");
    assert_eq!(
        other.1, 12,
        "initialised from the template, not from this thread's copy"
    );
}

#[test]
fn proc_pidinfo_reports_the_uid_set_for_a_pid_in_the_macos_layout() {
    sys::set_process(4242, 501);
    let mut info = [0xAAu8; 64];
    // SAFETY: a 64-byte buffer, as the plug-in passes.
    let got = unsafe {
        sys::proc_pidinfo(
            4242,
            sys::PROC_PIDT_SHORTBSDINFO,
            0,
            info.as_mut_ptr().cast(),
            64,
        )
    };
    assert_eq!(got, 64);
    let word = |at: usize| u32::from_ne_bytes(info[at..at + 4].try_into().unwrap());
    assert_eq!(
        (word(0), word(36), word(44), word(52)),
        (4242, 501, 501, 501)
    );
    sys::remove_process(4242);
    // SAFETY: as above.
    let got = unsafe {
        sys::proc_pidinfo(
            4242,
            sys::PROC_PIDT_SHORTBSDINFO,
            0,
            info.as_mut_ptr().cast(),
            64,
        )
    };
    assert_eq!(got, 0);
    assert_eq!(sys::last_errno(), 3, "ESRCH");
}

#[test]
fn only_files_the_test_provides_can_be_opened_and_read() {
    let path = c"/Library/Audio/Plug-Ins/HAL/HardMute.driver/Contents/Resources/test-file";
    // SAFETY (all calls): C strings and buffers of this test.
    unsafe {
        assert_eq!(
            sys::open(path.as_ptr(), 0x0100_0000, 0),
            -1,
            "not provided yet"
        );
        assert_eq!(sys::last_errno(), errno::ENOENT);
        sys::set_file(path.to_str().unwrap(), Some(b"501\n"));
        assert_eq!(sys::open(path.as_ptr(), 1, 0), -1, "write access refused");
        let fd = sys::open(path.as_ptr(), 0x0100_0000, 0o666); // O_RDONLY | O_CLOEXEC
        assert!(fd >= 0x4000);
        assert_eq!(sys::fcntl(fd, 1, 0), 1, "F_GETFD: close-on-exec");
        assert_eq!(sys::fcntl(-5, 1, 0), -1, "not a shim file");
        assert_eq!(sys::last_errno(), errno::EBADF);
        let mut st = [0u8; sys::MAC_STAT_SIZE];
        assert_eq!(sys::fstat(fd, st.as_mut_ptr()), 0);
        assert_eq!(i64::from_ne_bytes(st[96..104].try_into().unwrap()), 4);
        assert_eq!(sys::lseek(fd, 0, 1), 0);
        let mut buf = [0u8; 16];
        assert_eq!(sys::read(fd, buf.as_mut_ptr().cast(), 16), 4);
        assert_eq!(&buf[..4], b"501\n");
        assert_eq!(sys::read(fd, buf.as_mut_ptr().cast(), 16), 0, "end of file");
        assert_eq!(sys::close_nocancel(fd), 0);
        assert_eq!(sys::close(fd), -1, "closed twice");
        assert_eq!(sys::last_errno(), errno::EBADF);
        sys::set_file(path.to_str().unwrap(), None);
        assert_eq!(sys::open(path.as_ptr(), 0, 0), -1);
    }
}
