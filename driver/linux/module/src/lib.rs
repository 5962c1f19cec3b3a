//! Prototype: the HardMute gate as our own PipeWire module, `libpipewire-module-hardmute.so`.
//!
//! Built to measure the one-node shape against the shipped filter-chain route (two nodes; see
//! docs/data-path.md and docs/linux-module-probe.md). It is not shipped and nothing installs it.
//!
//! `pipewire__module_init` runs in the PipeWire server's main thread and makes ONE node: a
//! `pw_filter` (on a core the module connects to its own server) with one DSP input port (`input_MONO`) and one DSP
//! output port (`capture_MONO`), both f32 mono (`format.dsp`), `PW_FILTER_FLAG_RT_PROCESS`.
//! Its process callback (the data thread) copies the input into the output buffer and runs the
//! gate crate's [`GateRt`](hardmute_linux_gate::rt::GateRt) on it, against the same shared page
//! the LADSPA plugin uses ([`hardmute_linux_gate::shm::shared`], created muted and unleased
//! here at load). Anything linked into the node lands on its input, before the gate.
//!
//! - [`ffi`]: the hand-written libpipewire API subset, layouts asserted.
//! - [`cycle`]: one cycle, plain safe code (what the tests drive).
//! - [`props`]: the node's properties and the module arguments that may change them.
//! - [`pod`]: the node-level `EnumFormat` offered at connect (not announced by `pw_filter` on
//!   0.3.65, so WirePlumber still refuses the node; docs/linux-module-probe.md).
//!
//! Every `extern "C"` entry point tolerates null pointers and is wrapped in `catch_unwind`.
//! Note: with the workspace's release profile (`panic = "abort"`) a panic cannot be caught
//! there; the code is written not to panic (no indexing, no unwrap) rather than relying on it.
#![forbid(unsafe_op_in_unsafe_fn)]

pub mod cycle;
pub mod ffi;
pub mod pod;
pub mod props;

use core::ffi::{c_char, c_int, c_void};
use core::ptr;
use core::sync::atomic::{AtomicBool, Ordering};
use std::panic::{catch_unwind, AssertUnwindSafe};

use hardmute_linux_gate::abi::GateShm;

use crate::cycle::Cycle;
use crate::ffi::*;

/// The most samples one cycle handles: PipeWire's default `default.clock.quantum-limit`, the
/// size its DSP buffers are made for. A longer cycle is gated over its first
/// `MAX_SAMPLES` only (the port's buffer is never read or written beyond that).
pub const MAX_SAMPLES: u64 = 8192;

/// Everything one loaded module owns. Allocated with `calloc` (an allocation failure makes
/// init fail, never abort the server), freed when the module is destroyed.
struct Module {
    module_hook: spa_hook,
    filter_hook: spa_hook,
    core: *mut pw_core,
    own_core: bool,
    filter: *mut pw_filter,
    in_port: *mut c_void,
    out_port: *mut c_void,
    /// The process-wide page (null if it could not be made: zeros for ever).
    shm: *const GateShm,
    /// Main thread -> data thread: the node (re)started streaming (close the lease).
    arm: AtomicBool,
    /// Touched only by the data thread once the filter is connected.
    cycle: Cycle,
}

static ENUM_FORMAT: pod::Pod = pod::Pod(pod::mono_f32p(cycle::INITIAL_RATE));

static FILTER_EVENTS: pw_filter_events = pw_filter_events {
    version: PW_VERSION_FILTER_EVENTS,
    destroy: None,
    state_changed: Some(on_state_changed),
    io_changed: None,
    param_changed: None,
    add_buffer: None,
    remove_buffer: None,
    process: Some(on_process),
    drained: None,
    command: None,
};

static MODULE_EVENTS: pw_impl_module_events = pw_impl_module_events {
    version: PW_VERSION_IMPL_MODULE_EVENTS,
    destroy: Some(on_module_destroy),
    free: None,
    initialized: None,
    registered: None,
};

/// PipeWire's entry point for a module. Returns 0, or a negative errno (PipeWire then unloads
/// the library and, without `nofail`, refuses to start).
///
/// # Safety
/// Called by PipeWire's `pw_context_load_module` with a live module and a NUL-terminated
/// argument string or null.
#[no_mangle]
pub unsafe extern "C" fn pipewire__module_init(
    module: *mut pw_impl_module,
    args: *const c_char,
) -> c_int {
    // SAFETY: the caller's contract is passed on.
    catch_unwind(AssertUnwindSafe(|| unsafe { init(module, args) })).unwrap_or(-libc::EIO)
}

fn errno() -> c_int {
    // SAFETY: __errno_location returns this thread's errno slot.
    let e = unsafe { *libc::__errno_location() };
    if e > 0 {
        e
    } else {
        libc::EIO
    }
}

unsafe fn init(module: *mut pw_impl_module, args: *const c_char) -> c_int {
    if module.is_null() {
        return -libc::EINVAL;
    }
    // SAFETY: a live module.
    let context = unsafe { pw_impl_module_get_context(module) };
    if context.is_null() {
        return -libc::EINVAL;
    }
    // A core the context holds, else one connected here, as PipeWire's own modules do. In the
    // 0.3.65 and 1.4 daemons the context holds none (observed): the module connects to its
    // own server, and the node's client is the server itself.
    // SAFETY: a live context; the type name is a NUL-terminated static.
    let mut core = unsafe { pw_context_get_object(context, PW_TYPE_INTERFACE_CORE.as_ptr()) }
        .cast::<pw_core>();
    let own_core = core.is_null();
    if own_core {
        // SAFETY: a live context; null properties are allowed.
        core = unsafe { pw_context_connect(context, ptr::null_mut(), 0) };
        if core.is_null() {
            return -errno();
        }
    }
    let disconnect = |core: *mut pw_core| {
        if own_core {
            // SAFETY: the core this function connected.
            unsafe { pw_core_disconnect(core) };
        }
    };
    let shm = hardmute_linux_gate::shm::shared();
    // SAFETY: `args` is null or NUL-terminated (the caller's contract).
    let props = unsafe { props::node_props(args, own_core) };
    if props.is_null() {
        disconnect(core);
        return -libc::ENOMEM;
    }
    // SAFETY: plain allocation, checked below; calloc zeroes the hooks as PipeWire expects.
    let m = unsafe { libc::calloc(1, core::mem::size_of::<Module>()) }.cast::<Module>();
    if m.is_null() {
        // SAFETY: our own properties, not yet handed over.
        unsafe { pw_properties_free(props) };
        disconnect(core);
        return -libc::ENOMEM;
    }
    // SAFETY: `shm` is null or a page mapped for the life of the process.
    let cycle = Cycle::new(unsafe { shm.as_ref() });
    // SAFETY: `m` is a fresh allocation of the right size, aligned by malloc (16 bytes).
    unsafe {
        m.write(Module {
            module_hook: core::mem::zeroed(),
            filter_hook: core::mem::zeroed(),
            core,
            own_core,
            filter: ptr::null_mut(),
            in_port: ptr::null_mut(),
            out_port: ptr::null_mut(),
            shm,
            arm: AtomicBool::new(false),
            cycle,
        })
    };
    // SAFETY: `m` is initialised and stays at this address until freed in `teardown`;
    // `props` is handed over.
    let res = unsafe { build_filter(m, props) };
    if res < 0 {
        // SAFETY: `m` as written above; the module listener is not added yet.
        unsafe { teardown(m) };
        return res;
    }
    // SAFETY: a live module; the hook lives in `m` until `on_module_destroy` removes it.
    unsafe {
        pw_impl_module_add_listener(
            module,
            ptr::addr_of_mut!((*m).module_hook),
            &MODULE_EVENTS,
            m.cast(),
        )
    };
    0
}

/// Creates the filter (taking `props`), its two ports, and connects it. Negative errno on
/// failure; the caller then tears down whatever was made.
unsafe fn build_filter(m: *mut Module, props: *mut pw_properties) -> c_int {
    // SAFETY: the caller passes an initialised Module; `props` ownership goes to PipeWire
    // ("ownership is taken", filter.h).
    let filter = unsafe { pw_filter_new((*m).core, c"hardmute-module".as_ptr(), props) };
    if filter.is_null() {
        return -errno();
    }
    // SAFETY: `m` is initialised; the filter is live.
    unsafe {
        (*m).filter = filter;
        pw_filter_add_listener(
            filter,
            ptr::addr_of_mut!((*m).filter_hook),
            &FILTER_EVENTS,
            m.cast(),
        );
    }
    for (dir, name) in [
        (SPA_DIRECTION_INPUT, props::IN_PORT_NAME),
        (SPA_DIRECTION_OUTPUT, props::OUT_PORT_NAME),
    ] {
        // SAFETY: a NUL-terminated static name.
        let port_props = unsafe { props::port_props(name) };
        if port_props.is_null() {
            return -libc::ENOMEM;
        }
        // SAFETY: a live filter; `port_props` is handed over; no params (DSP ports get their
        // format from `format.dsp`).
        let port = unsafe {
            pw_filter_add_port(
                filter,
                dir,
                PW_FILTER_PORT_FLAG_MAP_BUFFERS,
                0,
                port_props,
                ptr::null_mut(),
                0,
            )
        };
        if port.is_null() {
            return -errno();
        }
        // SAFETY: `m` is initialised; the data thread is not running yet (not connected).
        unsafe {
            if dir == SPA_DIRECTION_INPUT {
                (*m).in_port = port;
            } else {
                (*m).out_port = port;
            }
        }
    }
    // The node-level EnumFormat WirePlumber's session item looks for (pod.rs).
    let mut params: [*const spa_pod; 1] = [ENUM_FORMAT.0.as_ptr().cast()];
    // SAFETY: a live filter with both ports; the pod is a static PipeWire copies.
    let res = unsafe {
        pw_filter_connect(
            filter,
            PW_FILTER_FLAG_RT_PROCESS,
            params.as_mut_ptr(),
            params.len() as u32,
        )
    };
    if res < 0 {
        return res;
    }
    0
}

/// Destroys what `m` holds and frees it. Main thread only.
unsafe fn teardown(m: *mut Module) {
    // SAFETY: `m` came from `init` (calloc + write) and is torn down once.
    unsafe {
        let filter = (*m).filter;
        (*m).filter = ptr::null_mut();
        if !filter.is_null() {
            // Stops the data thread's calls and removes our listener hook.
            pw_filter_destroy(filter);
        }
        if (*m).own_core && !(*m).core.is_null() {
            pw_core_disconnect((*m).core);
        }
        ptr::drop_in_place(m);
        libc::free(m.cast());
    }
}

/// Main thread: the next cycle closes the lease (until the next beat) whenever the node starts.
unsafe extern "C" fn on_state_changed(
    data: *mut c_void,
    _old: c_int,
    state: c_int,
    _error: *const c_char,
) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let m = data.cast::<Module>();
        if m.is_null() || state != PW_FILTER_STATE_STREAMING {
            return;
        }
        // SAFETY: `data` is the Module this listener was added with; only the atomic is
        // touched (the data thread may be running).
        unsafe { (*ptr::addr_of!((*m).arm)).store(true, Ordering::Release) };
    }));
}

/// The data thread, every cycle: input -> output buffer, then the gate over it.
unsafe extern "C" fn on_process(data: *mut c_void, position: *mut spa_io_position_head) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let m = data.cast::<Module>();
        if m.is_null() || position.is_null() {
            return;
        }
        // SAFETY: PipeWire passes the graph's live position for this cycle.
        let clock = unsafe { &(*position).clock };
        let n = clock.duration.min(MAX_SAMPLES) as u32;
        if n == 0 {
            return;
        }
        // SAFETY: `m` is the Module this listener was added with; the ports are set before
        // connect and never change afterwards.
        let (in_port, out_port, shm) = unsafe { ((*m).in_port, (*m).out_port, (*m).shm) };
        // The input first: with the output's buffer fetched first, PipeWire 0.3.65 returned
        // null for the input in every cycle (observed: the gate counted an underrun per cycle
        // and delivered zeros while live). PipeWire's own pw_filter example has this order too.
        // SAFETY: our live ports; PipeWire returns null or a buffer of at least `n` samples
        // (DSP buffers hold the quantum limit).
        let inp = unsafe { pw_filter_get_dsp_buffer(in_port, n) }.cast::<f32>();
        // SAFETY: as above.
        let out = unsafe { pw_filter_get_dsp_buffer(out_port, n) }.cast::<f32>();
        if out.is_null() {
            return;
        }
        let no_input = inp.is_null();
        // SAFETY: `n` samples behind each non-null pointer; `ptr::copy` allows overlap, and
        // only the output is borrowed, after the copy.
        let out = unsafe {
            if no_input {
                ptr::write_bytes(out, 0, n as usize);
            } else {
                ptr::copy(inp, out, n as usize);
            }
            core::slice::from_raw_parts_mut(out, n as usize)
        };
        // SAFETY: `arm` is an atomic the main thread only stores to; `cycle` is touched only
        // here (one data thread); `shm` is null or mapped for the life of the process.
        unsafe {
            let arm = (*ptr::addr_of!((*m).arm)).swap(false, Ordering::AcqRel);
            let cycle = &mut *ptr::addr_of_mut!((*m).cycle);
            cycle.process(
                shm.as_ref(),
                out,
                no_input,
                clock.rate.denom,
                clock.nsec,
                arm,
            );
        }
    }));
}

/// Main thread: the module is unloaded (or the server exits).
unsafe extern "C" fn on_module_destroy(data: *mut c_void) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let m = data.cast::<Module>();
        if m.is_null() {
            return;
        }
        // SAFETY: the Module this listener was added with; removing our own hook, then
        // tearing down once.
        unsafe {
            spa_hook_remove(ptr::addr_of_mut!((*m).module_hook));
            teardown(m);
        }
    }));
}
