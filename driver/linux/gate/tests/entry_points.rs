//! The plugin as PipeWire's filter-chain drives it, through the exported LADSPA entry points:
//! - realtime safety of `run()` (invariant 6): a counting global allocator sees no allocation
//!   or free across thousands of cycles with mute toggling, fade changes, beats, a lapsing
//!   lease, missing input and in-place buffers (no system call either: `no_syscalls.rs` runs
//!   the same under seccomp);
//! - the gate's output: exact zeros while muted or without a lease, the input otherwise;
//! - the shared page: a sealed memfd (cannot be truncated: no SIGBUS in the server), published
//!   through a 0700 locator; hostile contents (bad version, random bytes) mean zeros;
//! - every entry point tolerates null handles and buffers and unknown ports.
//!
//! One test function: the page is process-wide, and the locator lives in XDG_RUNTIME_DIR,
//! which this test points at a private directory before anything else runs.

use core::ffi::c_ulong;
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::Ordering;

use hardmute_core::control::{Authority, ChangeSource};
use hardmute_linux_gate::abi::{GateShm, LEASE_MS, REQUIRED_SEALS, SHM_SIZE};
use hardmute_linux_gate::ladspa::{ladspa_descriptor, Descriptor, PORT_IN, PORT_OUT};

#[global_allocator]
static GLOBAL: hardmute_alloc_counter::CountingAllocator =
    hardmute_alloc_counter::CountingAllocator;

const RATE: c_ulong = 48_000;
const FRAMES: usize = 1024;

fn desc() -> &'static Descriptor {
    // SAFETY: descriptor 0 is a static.
    unsafe { &*ladspa_descriptor(0) }
}

struct Plugin(*mut core::ffi::c_void);

impl Plugin {
    fn new() -> Plugin {
        let d = desc();
        // SAFETY: the entry points as the host calls them.
        let h = unsafe { (d.instantiate.unwrap())(d, RATE) };
        assert!(!h.is_null());
        Plugin(h)
    }
    fn connect(&self, port: c_ulong, buf: *mut f32) {
        // SAFETY: a live handle; the buffer outlives the runs below.
        unsafe { (desc().connect_port.unwrap())(self.0, port, buf) }
    }
    fn activate(&self) {
        // SAFETY: a live handle.
        unsafe { (desc().activate.unwrap())(self.0) }
    }
    fn run(&self, frames: usize) {
        // SAFETY: a live handle, buffers of at least `frames` connected.
        unsafe { (desc().run.unwrap())(self.0, frames as c_ulong) }
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        // SAFETY: a live handle, cleaned up once.
        unsafe {
            (desc().deactivate.unwrap())(self.0);
            (desc().cleanup.unwrap())(self.0);
        }
    }
}

fn page() -> &'static GateShm {
    let p = hardmute_linux_gate::shm::shared();
    assert!(!p.is_null(), "the page could not be created");
    // SAFETY: the page stays mapped for the process's life.
    unsafe { &*p }
}

fn set_muted(shm: &GateShm, muted: bool) {
    shm.control
        .set_muted(muted, ChangeSource::Cli, Authority::Owner)
        .unwrap();
    assert!(shm.control.wait_until_effective(|| {}, 1));
}

#[test]
fn the_plugin_as_filter_chain_drives_it() {
    let runtime = std::env::temp_dir().join(format!("hm-gate-test-{}", std::process::id()));
    std::fs::create_dir_all(&runtime).unwrap();
    std::env::set_var("XDG_RUNTIME_DIR", &runtime);

    // --- the descriptor
    let d = desc();
    // SAFETY: static C strings.
    let label = unsafe { core::ffi::CStr::from_ptr(d.label) };
    assert_eq!(
        label.to_str().unwrap(),
        hardmute_linux_gate::abi::PLUGIN_LABEL
    );
    assert_eq!(d.port_count, 2);
    // SAFETY: two static entries.
    let ports = unsafe { core::slice::from_raw_parts(d.port_descriptors, 2) };
    assert_eq!(ports, [9, 10], "audio in, audio out");
    assert!(ladspa_descriptor(1).is_null());

    // --- null tolerance
    // SAFETY: null handles must be ignored by every entry point.
    unsafe {
        (d.connect_port.unwrap())(core::ptr::null_mut(), 0, core::ptr::null_mut());
        (d.activate.unwrap())(core::ptr::null_mut());
        (d.run.unwrap())(core::ptr::null_mut(), 64);
        (d.deactivate.unwrap())(core::ptr::null_mut());
        (d.cleanup.unwrap())(core::ptr::null_mut());
    }

    let plugin = Plugin::new();
    let shm = page();

    // --- the locator and the seals
    let dir = runtime.join("hardmute");
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let target = std::fs::read_link(dir.join("gate")).unwrap();
    let target = target.to_str().unwrap().to_owned();
    let (pid, fd) = hardmute_linux_gate::abi::parse_locator_target(&target).unwrap();
    assert_eq!(pid, std::process::id());
    // SAFETY: fcntl/ftruncate on the plugin's fd, as a hostile process of the user could.
    unsafe {
        let seals = libc::fcntl(fd as i32, libc::F_GET_SEALS);
        assert_eq!(seals & REQUIRED_SEALS, REQUIRED_SEALS);
        assert_ne!(
            libc::ftruncate(fd as i32, 16),
            0,
            "truncation must be refused"
        );
        assert_ne!(libc::ftruncate(fd as i32, 2 * SHM_SIZE as i64), 0);
    }
    assert!(
        shm.control.header_ok() && shm.control.is_muted(),
        "fresh page: muted"
    );

    // --- cycles
    let input: Vec<f32> = (0..FRAMES)
        .map(|i| ((i as f32) * 0.01).sin() * 0.5 + 0.25)
        .collect();
    let mut inbuf = input.clone();
    let mut out = vec![1.0f32; FRAMES];
    plugin.connect(PORT_IN, inbuf.as_mut_ptr());
    plugin.connect(PORT_OUT, out.as_mut_ptr());
    plugin.connect(99, core::ptr::null_mut()); // unknown port: ignored
    plugin.activate();

    // No controller yet, state live: zeros (no lease).
    set_muted(shm, false);
    plugin.run(FRAMES);
    assert!(out.iter().all(|s| s.to_bits() == 0), "no lease: zeros");

    let lease_cycles = (u64::from(RATE as u32) * LEASE_MS / 1000) as usize / FRAMES;
    let (mut live_cycles, mut muted_cycles, mut expired_cycles) = (0, 0, 0);
    let before = hardmute_alloc_counter::heap_ops_on_this_thread();
    for cycle in 0..3000usize {
        // A controller that beats for 1000 cycles, then falls silent for 400, then comes back.
        let beating = !(1000..1400).contains(&(cycle % 1500));
        if beating && cycle % 5 == 0 {
            shm.beat(0, 1);
        }
        match cycle % 40 {
            0 => set_muted(shm, true),
            // The user's fade changes while muted (taken by the gate at its next cycle).
            10 => shm.set_fade_ms([0, 5, 20][(cycle / 40) % 3]),
            20 => set_muted(shm, false),
            _ => {}
        }
        let no_input = cycle % 7 == 3;
        plugin.connect(
            PORT_IN,
            if no_input {
                core::ptr::null_mut()
            } else {
                inbuf.as_mut_ptr()
            },
        );
        plugin.run(FRAMES);
        let silent_for = (cycle % 1500).saturating_sub(1000);
        let expired = !beating && silent_for > lease_cycles + 1;
        if shm.control.is_muted() || no_input || expired {
            assert!(
                out.iter().all(|s| s.to_bits() == 0),
                "cycle {cycle}: not exact zeros"
            );
            if expired {
                expired_cycles += 1;
            } else if !no_input {
                muted_cycles += 1;
            }
        } else if beating && cycle % 40 > 22 && cycle % 1500 > 5 {
            assert_eq!(out, input, "cycle {cycle}: passthrough");
            live_cycles += 1;
        }
        inbuf.copy_from_slice(&input);
    }
    assert_eq!(
        hardmute_alloc_counter::heap_ops_on_this_thread() - before,
        0,
        "run() allocated or freed"
    );
    assert!(live_cycles > 500 && muted_cycles > 500 && expired_cycles > 200);

    // In place (input and output the same buffer), as LADSPA allows.
    shm.beat(0, 1);
    let mut buf = input.clone();
    plugin.connect(PORT_IN, buf.as_mut_ptr());
    plugin.connect(PORT_OUT, buf.as_mut_ptr());
    plugin.run(FRAMES);
    assert_eq!(buf, input, "in place, live");
    set_muted(shm, true);
    plugin.run(FRAMES);
    assert!(buf.iter().all(|s| s.to_bits() == 0), "in place, muted");
    set_muted(shm, false);

    // --- hostile contents, written through the fd as another process of the user could.
    let write_at = |offset: u64, bytes: &[u8]| {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&target)
            .unwrap();
        f.write_all_at(bytes, offset).unwrap();
    };
    let mut out2 = vec![1.0f32; FRAMES];
    let mut in2 = input.clone();
    plugin.connect(PORT_IN, in2.as_mut_ptr());
    plugin.connect(PORT_OUT, out2.as_mut_ptr());
    shm.beat(0, 1);
    plugin.run(FRAMES);
    assert_eq!(
        out2[FRAMES - 1],
        input[FRAMES - 1],
        "live before the attack"
    );
    write_at(4, &99u32.to_le_bytes()); // version
    shm.beat(0, 1);
    plugin.run(FRAMES);
    assert!(
        out2.iter().all(|s| s.to_bits() == 0),
        "wrong version: zeros"
    );
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let random: Vec<u8> = (0..SHM_SIZE)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    write_at(0, &random);
    for _ in 0..10 {
        in2.copy_from_slice(&input);
        plugin.run(FRAMES);
        assert!(out2.iter().all(|s| s.to_bits() == 0), "random page: zeros");
    }
    assert!(shm.lease_beat.load(Ordering::SeqCst) != 0);
    drop(plugin);
    let _ = std::fs::remove_dir_all(&runtime);
}
