//! The LADSPA ABI (ladspa.h, version 1.1), written by hand, and the gate's entry points.
//!
//! PipeWire's `module-filter-chain` dlopens this library, calls `ladspa_descriptor(0..)` to
//! find the label [`PLUGIN_LABEL`](crate::abi::PLUGIN_LABEL), and then, per channel:
//! `instantiate` + `connect_port` + `activate` on its main thread when a format is set,
//! `connect_port` + `run` on its realtime data thread every cycle, `deactivate` + `activate` on
//! a pause, `deactivate` + `cleanup` when the format goes (suspend) or the module unloads.
//!
//! Every entry point accepts any argument without panicking: null handles and buffers are
//! ignored, unknown ports are ignored, a failed allocation makes `instantiate` return null.
//! Nothing here can unwind or abort.

use core::ffi::{c_char, c_int, c_ulong, c_void};
use core::ptr;

use crate::abi::GateShm;
use crate::rt::GateRt;

pub type LadspaHandle = *mut c_void;
pub type LadspaData = f32;

pub const PORT_INPUT: c_int = 0x1;
pub const PORT_OUTPUT: c_int = 0x2;
pub const PORT_CONTROL: c_int = 0x4;
pub const PORT_AUDIO: c_int = 0x8;
/// `LADSPA_PROPERTY_HARD_RT_CAPABLE`: run() is realtime-safe.
pub const PROPERTY_HARD_RT_CAPABLE: c_int = 0x4;

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PortRangeHint {
    pub hint_descriptor: c_int,
    pub lower_bound: LadspaData,
    pub upper_bound: LadspaData,
}

#[repr(C)]
pub struct Descriptor {
    pub unique_id: c_ulong,
    pub label: *const c_char,
    pub properties: c_int,
    pub name: *const c_char,
    pub maker: *const c_char,
    pub copyright: *const c_char,
    pub port_count: c_ulong,
    pub port_descriptors: *const c_int,
    pub port_names: *const *const c_char,
    pub port_range_hints: *const PortRangeHint,
    pub implementation_data: *mut c_void,
    pub instantiate: Option<unsafe extern "C" fn(*const Descriptor, c_ulong) -> LadspaHandle>,
    pub connect_port: Option<unsafe extern "C" fn(LadspaHandle, c_ulong, *mut LadspaData)>,
    pub activate: Option<unsafe extern "C" fn(LadspaHandle)>,
    pub run: Option<unsafe extern "C" fn(LadspaHandle, c_ulong)>,
    pub run_adding: Option<unsafe extern "C" fn(LadspaHandle, c_ulong)>,
    pub set_run_adding_gain: Option<unsafe extern "C" fn(LadspaHandle, LadspaData)>,
    pub deactivate: Option<unsafe extern "C" fn(LadspaHandle)>,
    pub cleanup: Option<unsafe extern "C" fn(LadspaHandle)>,
}

// The ABI on LP64 Linux (x86_64, aarch64): pinned so a field slip cannot go unnoticed.
#[cfg(target_pointer_width = "64")]
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<PortRangeHint>() == 12);
    assert!(size_of::<Descriptor>() == 152);
    assert!(offset_of!(Descriptor, unique_id) == 0);
    assert!(offset_of!(Descriptor, label) == 8);
    assert!(offset_of!(Descriptor, properties) == 16);
    assert!(offset_of!(Descriptor, name) == 24);
    assert!(offset_of!(Descriptor, maker) == 32);
    assert!(offset_of!(Descriptor, copyright) == 40);
    assert!(offset_of!(Descriptor, port_count) == 48);
    assert!(offset_of!(Descriptor, port_descriptors) == 56);
    assert!(offset_of!(Descriptor, port_names) == 64);
    assert!(offset_of!(Descriptor, port_range_hints) == 72);
    assert!(offset_of!(Descriptor, implementation_data) == 80);
    assert!(offset_of!(Descriptor, instantiate) == 88);
    assert!(offset_of!(Descriptor, connect_port) == 96);
    assert!(offset_of!(Descriptor, activate) == 104);
    assert!(offset_of!(Descriptor, run) == 112);
    assert!(offset_of!(Descriptor, run_adding) == 120);
    assert!(offset_of!(Descriptor, set_run_adding_gain) == 128);
    assert!(offset_of!(Descriptor, deactivate) == 136);
    assert!(offset_of!(Descriptor, cleanup) == 144);
};

/// Port indices.
pub const PORT_IN: c_ulong = 0;
pub const PORT_OUT: c_ulong = 1;

struct Static<T>(T);
// SAFETY: the wrapped values are immutable statics made of pointers to other immutable statics
// (string literals, arrays); sharing them between threads is sharing read-only data.
unsafe impl<T> Sync for Static<T> {}

static PORT_DESCRIPTORS: [c_int; 2] = [PORT_INPUT | PORT_AUDIO, PORT_OUTPUT | PORT_AUDIO];
static PORT_NAMES: Static<[*const c_char; 2]> = Static([c"In".as_ptr(), c"Out".as_ptr()]);
static PORT_HINTS: [PortRangeHint; 2] = [PortRangeHint {
    hint_descriptor: 0,
    lower_bound: 0.0,
    upper_bound: 0.0,
}; 2];

static DESCRIPTOR: Static<Descriptor> = Static(Descriptor {
    unique_id: 0x48_4d_47, // "HMG"
    label: c"hardmute_gate".as_ptr(),
    properties: PROPERTY_HARD_RT_CAPABLE,
    name: c"HardMute gate".as_ptr(),
    maker: c"HardMute".as_ptr(),
    copyright: c"MIT OR Apache-2.0".as_ptr(),
    port_count: 2,
    port_descriptors: PORT_DESCRIPTORS.as_ptr(),
    port_names: PORT_NAMES.0.as_ptr(),
    port_range_hints: PORT_HINTS.as_ptr(),
    implementation_data: ptr::null_mut(),
    instantiate: Some(instantiate),
    connect_port: Some(connect_port),
    activate: Some(activate),
    run: Some(run),
    run_adding: None,
    set_run_adding_gain: None,
    deactivate: Some(deactivate),
    cleanup: Some(cleanup),
});

/// The LADSPA entry point: descriptor 0 is the gate; any other index is null.
#[no_mangle]
pub extern "C" fn ladspa_descriptor(index: c_ulong) -> *const Descriptor {
    if index == 0 {
        &DESCRIPTOR.0
    } else {
        ptr::null()
    }
}

struct Instance {
    rt: GateRt,
    input: *const f32,
    output: *mut f32,
    /// The process-wide page (never unmapped, sealed: always safe to read); null if it could
    /// not be created, and then this instance only ever delivers zeros.
    shm: *const GateShm,
}

unsafe extern "C" fn instantiate(_desc: *const Descriptor, rate: c_ulong) -> LadspaHandle {
    let rate = u32::try_from(rate).unwrap_or(u32::MAX).clamp(1, 1_536_000);
    let shm = crate::shm::shared();
    // SAFETY: `shm` is null or a page that stays mapped for the process's life.
    let rt = GateRt::new(rate, unsafe { shm.as_ref() });
    // malloc, not Box: an allocation failure must return null, not abort the server.
    // SAFETY: plain allocation of the instance's size; checked for null before use.
    let p = unsafe { libc::malloc(core::mem::size_of::<Instance>()) } as *mut Instance;
    if p.is_null() {
        return ptr::null_mut();
    }
    // SAFETY: `p` is a fresh allocation, suitably aligned (malloc's alignment is at least 16).
    unsafe {
        p.write(Instance {
            rt,
            input: ptr::null(),
            output: ptr::null_mut(),
            shm,
        })
    };
    p.cast()
}

unsafe extern "C" fn connect_port(h: LadspaHandle, port: c_ulong, data: *mut LadspaData) {
    // SAFETY: the host passes a handle `instantiate` returned (or null, ignored).
    let Some(inst) = (unsafe { h.cast::<Instance>().as_mut() }) else {
        return;
    };
    match port {
        PORT_IN => inst.input = data,
        PORT_OUT => inst.output = data,
        _ => {}
    }
}

unsafe extern "C" fn activate(h: LadspaHandle) {
    // SAFETY: as in `connect_port`.
    let Some(inst) = (unsafe { h.cast::<Instance>().as_mut() }) else {
        return;
    };
    // Off the realtime path: the wall clock may be read here.
    let now = crate::abi::monotonic_ns();
    // SAFETY: `shm` is null or the page `shm::shared()` mapped, which stays mapped for the
    // life of the process and cannot shrink (sealed).
    let shm = unsafe { inst.shm.as_ref() };
    inst.rt.activate(shm, now);
}

unsafe extern "C" fn run(h: LadspaHandle, frames: c_ulong) {
    // SAFETY: as in `connect_port`.
    let Some(inst) = (unsafe { h.cast::<Instance>().as_mut() }) else {
        return;
    };
    if inst.output.is_null() {
        return;
    }
    let n = usize::try_from(frames).unwrap_or(0);
    let no_input = inst.input.is_null();
    // SAFETY: the host guarantees `frames` samples behind each connected port. Input and output
    // may be the same buffer (LADSPA allows in-place), so the input is moved with a
    // memmove-style copy and only the output is ever borrowed.
    let out = unsafe {
        if no_input {
            ptr::write_bytes(inst.output, 0, n);
        } else {
            ptr::copy(inst.input, inst.output, n);
        }
        core::slice::from_raw_parts_mut(inst.output, n)
    };
    let page = inst.shm;
    // SAFETY: as in `activate` (a copy of the pointer, so `rt` can be borrowed mutably).
    let shm = unsafe { page.as_ref() };
    inst.rt.process(shm, out, no_input);
}

unsafe extern "C" fn deactivate(_h: LadspaHandle) {}

unsafe extern "C" fn cleanup(h: LadspaHandle) {
    let p = h.cast::<Instance>();
    if p.is_null() {
        return;
    }
    // SAFETY: `p` came from `instantiate` (malloc + write) and the host cleans up once.
    unsafe {
        ptr::drop_in_place(p);
        libc::free(p.cast());
    }
}
