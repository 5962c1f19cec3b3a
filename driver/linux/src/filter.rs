//! The gate filter: one `pw_filter` node with N DSP f32 input ports (fed from the physical
//! source) and N output ports (linked to hardmute_mic's inputs). Its process callback runs the
//! gate in the same graph cycle that captured the samples.
//!
//! pipewire 0.10 has no Filter wrapper, so this is the thin unsafe FFI layer (pipewire-sys);
//! everything above it is safe.

use std::ffi::{c_void, CString};
use std::ptr;
use std::sync::Arc;

use pipewire::spa::sys as spa_sys;
use pipewire_sys as pw_sys;

use crate::graph::{FEEDER_NODE_NAME, MARKER_FEEDER, MARKER_KEY};
use crate::hm_core::control::ControlBlock;
use crate::rt::{LevelTap, RtGate, MAX_CHANNELS};

/// What the process callback owns. Touched only by the data-loop thread while connected.
struct ProcessData {
    ctl: Arc<ControlBlock>,
    rt: RtGate,
    in_ports: [*mut c_void; MAX_CHANNELS],
    out_ports: [*mut c_void; MAX_CHANNELS],
}

pub struct FeederFilter {
    filter: *mut pw_sys::pw_filter,
    // Boxed so their addresses stay fixed while PipeWire holds pointers to them.
    _hook: Box<spa_sys::spa_hook>,
    _events: Box<pw_sys::pw_filter_events>,
    data: *mut ProcessData,
    channels: Vec<String>,
}

/// This cycle's DSP buffer of one port, bounded by what PipeWire actually gave us (unlike
/// `pw_filter_get_dsp_buffer`, which returns a bare pointer): an input yields its valid chunk,
/// an output its writable capacity (and its chunk is set to the frames we will write).
///
/// # Safety
/// `port` is port data from `pw_filter_add_port`, called from the filter's process callback.
unsafe fn port_buffer(port: *mut c_void, frames: usize, output: bool) -> Option<(*mut f32, usize)> {
    // SAFETY: caller's contract; dequeue returns null when the port has no buffer this cycle.
    let b = unsafe { pw_sys::pw_filter_dequeue_buffer(port) };
    if b.is_null() {
        return None;
    }
    // SAFETY: a dequeued pw_buffer points to a valid spa_buffer with n_datas spa_data entries,
    // each with a chunk, all valid until the buffer is queued back and the cycle ends.
    let result = unsafe {
        let sb = (*b).buffer;
        if sb.is_null()
            || (*sb).n_datas < 1
            || (*(*sb).datas).data.is_null()
            || (*(*sb).datas).chunk.is_null()
        {
            None
        } else {
            let d = &mut *(*sb).datas;
            let chunk = &mut *d.chunk;
            let max = d.maxsize as usize;
            if output {
                let n = frames.min(max / 4);
                chunk.offset = 0;
                chunk.size = (n * 4) as u32;
                chunk.stride = 4;
                chunk.flags = 0;
                Some((d.data as *mut f32, n))
            } else {
                let offset = if max == 0 {
                    0
                } else {
                    chunk.offset as usize % max
                };
                let size = (chunk.size as usize).min(max - offset);
                let n = frames.min(size / 4);
                Some(((d.data as *mut u8).add(offset) as *mut f32, n))
            }
        }
    };
    // SAFETY: give the buffer back for this cycle, as pw_filter_get_dsp_buffer does; its memory
    // stays ours to read/write until the process callback returns.
    unsafe { pw_sys::pw_filter_queue_buffer(port, b) };
    result
}

unsafe extern "C" fn on_process(data: *mut c_void, position: *mut spa_sys::spa_io_position) {
    // SAFETY: `data` is the ProcessData pointer registered in `FeederFilter::new`; it lives
    // until after the filter is destroyed, and only this (data-loop) thread uses it while the
    // filter is connected. `position` is PipeWire's io area for this cycle, or null.
    let d = unsafe { &mut *(data as *mut ProcessData) };
    let frames = if position.is_null() {
        0
    } else {
        // SAFETY: non-null io area provided by PipeWire for the duration of the callback.
        unsafe { (*position).clock.duration as usize }
    };
    let n = d.rt.channels();
    let mut inputs: [Option<&[f32]>; MAX_CHANNELS] = [None; MAX_CHANNELS];
    let mut outputs: [Option<&mut [f32]>; MAX_CHANNELS] = [const { None }; MAX_CHANNELS];
    for (slot, port) in inputs.iter_mut().zip(d.in_ports.iter()).take(n) {
        // SAFETY: port data of this filter, in its process callback; the slice stays within
        // the buffer's valid chunk and is only read during this cycle.
        if let Some((buf, len)) = unsafe { port_buffer(*port, frames, false) } {
            *slot = Some(unsafe { std::slice::from_raw_parts(buf, len) });
        }
    }
    for (slot, port) in outputs.iter_mut().zip(d.out_ports.iter()).take(n) {
        // SAFETY: as above; the slice stays within the buffer's capacity and this cycle's
        // output buffer is ours alone.
        if let Some((buf, len)) = unsafe { port_buffer(*port, frames, true) } {
            *slot = Some(unsafe { std::slice::from_raw_parts_mut(buf, len) });
        }
    }
    d.rt.process(&d.ctl, &inputs[..n], &mut outputs[..n], frames);
}

fn cstring(s: &str) -> CString {
    CString::new(s.replace('\0', "")).unwrap_or_default()
}

/// Builds a pw_properties from key/value pairs (ownership passes to the caller / PipeWire).
fn properties(pairs: &[(&str, &str)]) -> *mut pw_sys::pw_properties {
    // SAFETY: pw_properties_new with a lone NULL terminator creates an empty set.
    let props = unsafe { pw_sys::pw_properties_new(ptr::null()) };
    for (k, v) in pairs {
        let (k, v) = (cstring(k), cstring(v));
        // SAFETY: props is a valid pw_properties; k and v are NUL-terminated and copied.
        unsafe { pw_sys::pw_properties_set(props, k.as_ptr(), v.as_ptr()) };
    }
    props
}

#[derive(Debug)]
pub struct FilterError(pub String);

impl FeederFilter {
    /// Creates and connects the filter on `core` with one in/out port pair per channel
    /// position in `channels` (e.g. ["FL", "FR"]).
    ///
    /// # Safety
    /// `core` must be a live pw_core whose loop is the calling thread's loop; the filter must
    /// be dropped before that core.
    pub unsafe fn new(
        core: *mut pw_sys::pw_core,
        channels: &[String],
        rate_hz: u32,
        fade_ms: u32,
        ctl: Arc<ControlBlock>,
        level: Arc<LevelTap>,
    ) -> Result<FeederFilter, FilterError> {
        let channels: Vec<String> = channels.iter().take(MAX_CHANNELS).cloned().collect();
        let props = properties(&[
            ("node.name", FEEDER_NODE_NAME),
            (
                "node.description",
                "HardMute gate (feeds the HardMute Microphone)",
            ),
            ("media.type", "Audio"),
            ("media.category", "Filter"),
            ("media.role", "DSP"),
            ("node.autoconnect", "false"),
            ("node.dont-reconnect", "true"),
            (MARKER_KEY, MARKER_FEEDER),
        ]);
        let name = cstring(FEEDER_NODE_NAME);
        // SAFETY: core is live (caller's contract); props ownership passes to the filter.
        let filter = unsafe { pw_sys::pw_filter_new(core, name.as_ptr(), props) };
        if filter.is_null() {
            return Err(FilterError("pw_filter_new failed".into()));
        }
        let data = Box::into_raw(Box::new(ProcessData {
            ctl,
            rt: RtGate::with_level_tap(channels.len().max(1), rate_hz, fade_ms, level),
            in_ports: [ptr::null_mut(); MAX_CHANNELS],
            out_ports: [ptr::null_mut(); MAX_CHANNELS],
        }));
        // SAFETY: an all-zero pw_filter_events is valid (every callback None).
        let mut events: Box<pw_sys::pw_filter_events> = Box::new(unsafe { std::mem::zeroed() });
        events.version = pw_sys::PW_VERSION_FILTER_EVENTS;
        events.process = Some(on_process);
        // SAFETY: an all-zero spa_hook is the documented initial state.
        let mut hook: Box<spa_sys::spa_hook> = Box::new(unsafe { std::mem::zeroed() });
        // SAFETY: filter is valid; hook/events/data are boxed (fixed addresses) and outlive the
        // filter (Drop destroys the filter before freeing them).
        unsafe {
            pw_sys::pw_filter_add_listener(filter, &mut *hook, &*events, data as *mut c_void);
        }
        // From here on, an early return drops `me`, which destroys the filter and frees `data`.
        let me = FeederFilter {
            filter,
            _hook: hook,
            _events: events,
            data,
            channels,
        };
        for (i, pos) in me.channels.iter().enumerate() {
            for (dir, prefix) in [
                (spa_sys::SPA_DIRECTION_INPUT, "input"),
                (spa_sys::SPA_DIRECTION_OUTPUT, "output"),
            ] {
                let port_props = properties(&[
                    ("format.dsp", "32 bit float mono audio"),
                    ("port.name", &format!("{prefix}_{pos}")),
                    ("audio.channel", pos),
                ]);
                // SAFETY: filter valid; props ownership passes to the port; no extra params.
                let port = unsafe {
                    pw_sys::pw_filter_add_port(
                        filter,
                        dir,
                        pw_sys::pw_filter_port_flags_PW_FILTER_PORT_FLAG_MAP_BUFFERS,
                        0,
                        port_props,
                        ptr::null_mut(),
                        0,
                    )
                };
                if port.is_null() {
                    return Err(FilterError(format!(
                        "pw_filter_add_port {prefix}_{pos} failed"
                    )));
                }
                // SAFETY: not connected yet, so the process callback cannot run concurrently.
                let d = unsafe { &mut *data };
                if dir == spa_sys::SPA_DIRECTION_INPUT {
                    d.in_ports[i] = port;
                } else {
                    d.out_ports[i] = port;
                }
            }
        }
        // SAFETY: filter valid; no connect params (DSP ports carry their own format).
        let res = unsafe {
            pw_sys::pw_filter_connect(
                filter,
                pw_sys::pw_filter_flags_PW_FILTER_FLAG_RT_PROCESS,
                ptr::null_mut(),
                0,
            )
        };
        if res < 0 {
            return Err(FilterError(format!("pw_filter_connect failed: {res}")));
        }
        Ok(me)
    }

    /// The filter's node id in the graph, once PipeWire has assigned it.
    pub fn node_id(&self) -> Option<u32> {
        // SAFETY: filter is valid for the lifetime of self.
        let id = unsafe { pw_sys::pw_filter_get_node_id(self.filter) };
        (id != pw_sys::PW_ID_ANY).then_some(id)
    }

    pub fn channels(&self) -> &[String] {
        &self.channels
    }
}

impl Drop for FeederFilter {
    fn drop(&mut self) {
        // SAFETY: filter valid until here. pw_filter_destroy disconnects first (which waits for
        // the data loop to leave the process callback), so afterwards nothing uses `data`.
        unsafe {
            pw_sys::pw_filter_destroy(self.filter);
            drop(Box::from_raw(self.data));
        }
    }
}
