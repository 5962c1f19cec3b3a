//! The WaveRT miniport (`IMiniportWaveRT`) and its capture stream
//! (`IMiniportWaveRTStreamNotification`, which starts with `IMiniportWaveRTStream`, and
//! `IMiniportWaveRTInputStream` for packet-mode capture, a second vtable pointer in the same
//! object).
//!
//! Concurrency: PortCls serialises the stream's methods. The model is touched by those
//! methods only while the timer is stopped (SetState cancels and flushes the timer before
//! leaving RUN; SetFormat/AllocateAudioBuffer are refused outside STOP/ACQUIRE by the
//! model), and by the timer callback only while running. GetPosition, which PortCls may
//! call at any time, reads an atomic the callback publishes. GetReadPacket, likewise at any
//! time, reads the model's `PacketBoard` (atomics the callback and the serialised calls
//! publish) and its own `ReadCursor` under a spin lock nobody else takes. The callback takes no
//! lock.

use crate::control;
use crate::ddk::access::{guid_eq, qpc};
use crate::ddk::extra::*;
use crate::ddk::*;
use crate::descriptors::{capture_range_index, WAVE_FILTER};
use crate::guids::*;
use crate::pool::{self, SpinLock};
use core::cell::UnsafeCell;
use core::ptr::{null_mut, write_bytes};
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};
use hardmute_windows_model::format::parse_stream_format;
use hardmute_windows_model::miniport::WaveMiniport;
use hardmute_windows_model::packets::{PacketBoard, ReadCursor};
use hardmute_windows_model::status::*;
use hardmute_windows_model::stream::{CaptureStream, KsState, TimerAction};

/// Upper bound on a KS format/range PortCls hands us (it validated FormatSize against the
/// IRP already; this only bounds the slice we form).
const MAX_KS_FORMAT_BYTES: usize = 4096;

/// A byte view of a KS structure whose first ULONG is its own size.
///
/// # Safety
/// `p` points at a KSDATAFORMAT/KSDATARANGE whose `FormatSize` bytes are readable.
unsafe fn ks_bytes<'a>(p: *const KSDATAFORMAT) -> &'a [u8] {
    // SAFETY: per the contract (FormatSize is the first ULONG of the union's struct).
    unsafe {
        let size = (p as *const u32).read_unaligned() as usize;
        core::slice::from_raw_parts(p.cast::<u8>(), size.min(MAX_KS_FORMAT_BYTES))
    }
}

// ---------------------------------------------------------------- miniport

#[repr(C)]
pub struct WaveMiniportObj {
    vtbl: *const IMiniportWaveRTVtbl,
    refs: AtomicU32,
    model: SpinLock<WaveMiniport>,
}

static MINIPORT_VTBL: IMiniportWaveRTVtbl = IMiniportWaveRTVtbl {
    QueryInterface: Some(mp_query_interface),
    AddRef: Some(mp_add_ref),
    Release: Some(mp_release),
    GetDescription: Some(mp_get_description),
    DataRangeIntersection: Some(mp_data_range_intersection),
    Init: Some(mp_init),
    NewStream: Some(mp_new_stream),
    GetDeviceDescription: Some(mp_get_device_description),
};

/// A new miniport with one reference, as PUNKNOWN; null when out of memory.
pub fn create_miniport() -> PUNKNOWN {
    let obj = WaveMiniportObj {
        vtbl: &MINIPORT_VTBL,
        refs: AtomicU32::new(1),
        model: SpinLock::new(WaveMiniport::new()),
    };
    pool::alloc(obj, pool::TAG_WAVE_MINIPORT).cast()
}

unsafe extern "C" fn mp_query_interface(
    this: *mut IMiniportWaveRT,
    iid: *const IID,
    out: *mut PVOID,
) -> NTSTATUS {
    // SAFETY: PortCls passes a valid IID and out pointer.
    let iid = unsafe { &*iid };
    if [IID_IUNKNOWN, IID_IMINIPORT, IID_IMINIPORT_WAVERT]
        .iter()
        .any(|i| guid_eq(i, iid))
    {
        // SAFETY: live object; the new reference is handed out.
        unsafe {
            mp_add_ref(this);
            *out = this.cast();
        }
        STATUS_SUCCESS
    } else {
        // SAFETY: valid out pointer.
        unsafe { *out = null_mut() };
        STATUS_INVALID_PARAMETER
    }
}

unsafe extern "C" fn mp_add_ref(this: *mut IMiniportWaveRT) -> ULONG {
    // SAFETY: `this` is a live WaveMiniportObj (interface = first field).
    let obj = unsafe { &*this.cast::<WaveMiniportObj>() };
    obj.refs.fetch_add(1, Ordering::Relaxed) + 1
}

unsafe extern "C" fn mp_release(this: *mut IMiniportWaveRT) -> ULONG {
    let obj = this.cast::<WaveMiniportObj>();
    // SAFETY: live object; freed exactly once, on the last reference.
    unsafe {
        let left = (*obj).refs.fetch_sub(1, Ordering::AcqRel) - 1;
        if left == 0 {
            pool::free(obj, pool::TAG_WAVE_MINIPORT);
        }
        left
    }
}

unsafe extern "C" fn mp_get_description(
    _this: *mut IMiniportWaveRT,
    out: *mut PPCFILTER_DESCRIPTOR,
) -> NTSTATUS {
    // SAFETY: valid out pointer; the descriptor is static and never written.
    unsafe { *out = (&WAVE_FILTER.0 as *const PCFILTER_DESCRIPTOR).cast_mut() };
    STATUS_SUCCESS
}

unsafe extern "C" fn mp_data_range_intersection(
    this: *mut IMiniportWaveRT,
    pin: ULONG,
    client: PKSDATARANGE,
    ours: PKSDATARANGE,
    out_len: ULONG,
    out: PVOID,
    result_len: PULONG,
) -> NTSTATUS {
    let Some(index) = capture_range_index(ours) else {
        return STATUS_NOT_IMPLEMENTED;
    };
    // SAFETY: PortCls validated the client range's FormatSize against the request.
    let client = unsafe { ks_bytes(client) };
    let out: &mut [u8] = if out.is_null() || out_len == 0 {
        &mut []
    } else {
        // SAFETY: PortCls provides `out_len` writable bytes at `out`.
        unsafe { core::slice::from_raw_parts_mut(out.cast(), out_len as usize) }
    };
    // SAFETY: live object.
    let obj = unsafe { &*this.cast::<WaveMiniportObj>() };
    let r = obj
        .model
        .with(|m| m.data_range_intersection(pin, client, index, out));
    // SAFETY: valid out pointer.
    unsafe { *result_len = r.result_len };
    r.status
}

unsafe extern "C" fn mp_init(
    _this: *mut IMiniportWaveRT,
    _a: PUNKNOWN,
    _r: PRESOURCELIST,
    _p: PPORTWAVERT,
) -> NTSTATUS {
    STATUS_SUCCESS
}

unsafe extern "C" fn mp_get_device_description(
    _this: *mut IMiniportWaveRT,
    desc: PDEVICE_DESCRIPTION,
) -> NTSTATUS {
    // No DMA: a zeroed description says so.
    // SAFETY: PortCls passes a writable DEVICE_DESCRIPTION.
    unsafe { write_bytes(desc, 0, 1) };
    STATUS_SUCCESS
}

unsafe extern "C" fn mp_new_stream(
    this: *mut IMiniportWaveRT,
    out_stream: *mut PMINIPORTWAVERTSTREAM,
    port_stream: PPORTWAVERTSTREAM,
    pin: ULONG,
    capture: BOOLEAN,
    format: PKSDATAFORMAT,
) -> NTSTATUS {
    // SAFETY: valid out pointer per COM rules; cleared first so failures hand out nothing.
    unsafe { *out_stream = null_mut() };
    let miniport = this.cast::<WaveMiniportObj>();
    // SAFETY: PortCls validated the format's FormatSize against the request.
    let format = unsafe { ks_bytes(format) };
    let (_, freq) = qpc();
    // SAFETY: live object.
    let model = match unsafe { &*miniport }
        .model
        .with(|m| m.new_stream(pin, capture != 0, format, freq))
    {
        Ok(model) => model,
        Err(status) => return status,
    };
    // SAFETY: `miniport` and `port_stream` are live; WaveStream::create takes references.
    match unsafe { WaveStream::create(model, miniport, port_stream) } {
        Some(stream) => {
            // SAFETY: valid out pointer; the stream's interface is its first field.
            unsafe { *out_stream = stream.cast() };
            STATUS_SUCCESS
        }
        None => {
            // SAFETY: live object; undo the instance count taken by new_stream.
            unsafe { &*miniport }.model.with(|m| m.stream_closed());
            STATUS_INSUFFICIENT_RESOURCES
        }
    }
}

// ---------------------------------------------------------------- stream

#[repr(C)]
pub struct WaveStream {
    vtbl: *const IMiniportWaveRTStreamNotificationVtbl,
    refs: AtomicU32,
    miniport: *mut WaveMiniportObj,
    port_stream: PPORTWAVERTSTREAM,
    timer: PEX_TIMER,
    model: UnsafeCell<CaptureStream>,
    mdl: PMDL,
    buffer: *mut u8,
    buffer_bytes: usize,
    /// Byte offset published by the timer callback for GetPosition.
    position: AtomicU64,
    /// Set while the timer callback runs (SetState waits for it to drop to 0).
    in_tick: AtomicU32,
    event: AtomicPtr<KEVENT>,
    /// `IMiniportWaveRTInputStream`: QueryInterface hands out a pointer to this field.
    input_vtbl: *const IMiniportWaveRTInputStreamVtbl,
    /// Packet facts for GetReadPacket, published after every tick and state change.
    packets: PacketBoard,
    /// The audio engine's packet cursor (GetReadPacket only).
    read_cursor: SpinLock<ReadCursor>,
}

static STREAM_VTBL: IMiniportWaveRTStreamNotificationVtbl = IMiniportWaveRTStreamNotificationVtbl {
    QueryInterface: Some(st_query_interface),
    AddRef: Some(st_add_ref),
    Release: Some(st_release),
    SetFormat: Some(st_set_format),
    SetState: Some(st_set_state),
    GetPosition: Some(st_get_position),
    AllocateAudioBuffer: Some(st_allocate_audio_buffer),
    FreeAudioBuffer: Some(st_free_audio_buffer),
    GetHWLatency: Some(st_get_hw_latency),
    GetPositionRegister: Some(st_no_register),
    GetClockRegister: Some(st_no_register),
    AllocateBufferWithNotification: Some(st_allocate_buffer_with_notification),
    FreeBufferWithNotification: Some(st_free_audio_buffer),
    RegisterNotificationEvent: Some(st_register_event),
    UnregisterNotificationEvent: Some(st_unregister_event),
};

static INPUT_STREAM_VTBL: IMiniportWaveRTInputStreamVtbl = IMiniportWaveRTInputStreamVtbl {
    QueryInterface: Some(in_query_interface),
    AddRef: Some(in_add_ref),
    Release: Some(in_release),
    GetReadPacket: Some(in_get_read_packet),
};

type This = *mut IMiniportWaveRTStreamNotification;
type InputThis = *mut IMiniportWaveRTInputStream;

/// The stream behind its `IMiniportWaveRTInputStream` pointer (the `input_vtbl` field).
fn from_input(this: InputThis) -> This {
    this.cast::<u8>()
        .wrapping_sub(core::mem::offset_of!(WaveStream, input_vtbl))
        .cast()
}

/// # Safety
/// `this` is a live WaveStream.
unsafe fn stream<'a>(this: This) -> &'a WaveStream {
    // SAFETY: per the contract (the interface pointer is the object pointer).
    unsafe { &*this.cast::<WaveStream>() }
}

impl WaveStream {
    /// # Safety
    /// `miniport` and `port_stream` are live; both get a reference held by the stream.
    unsafe fn create(
        model: CaptureStream,
        miniport: *mut WaveMiniportObj,
        port_stream: PPORTWAVERTSTREAM,
    ) -> Option<*mut WaveStream> {
        let obj = WaveStream {
            vtbl: &STREAM_VTBL,
            refs: AtomicU32::new(1),
            miniport,
            port_stream,
            timer: null_mut(),
            model: UnsafeCell::new(model),
            mdl: null_mut(),
            buffer: null_mut(),
            buffer_bytes: 0,
            position: AtomicU64::new(0),
            in_tick: AtomicU32::new(0),
            event: AtomicPtr::new(null_mut()),
            input_vtbl: &INPUT_STREAM_VTBL,
            packets: PacketBoard::new(),
            read_cursor: SpinLock::new(ReadCursor::new()),
        };
        let p = pool::alloc(obj, pool::TAG_WAVE_STREAM);
        if p.is_null() {
            return None;
        }
        // SAFETY: `p` is our fresh object; the timer's context is the object itself and the
        // timer is deleted (with wait) before the object is freed.
        let timer =
            unsafe { ExAllocateTimer(Some(timer_callback), p.cast(), EX_TIMER_HIGH_RESOLUTION) };
        if timer.is_null() {
            // SAFETY: never shared.
            unsafe { pool::free(p, pool::TAG_WAVE_STREAM) };
            return None;
        }
        // SAFETY: `p` is live and not yet shared; the AddRefs pair with st_release.
        unsafe {
            (*p).timer = timer;
            mp_add_ref(miniport.cast());
            let vtbl = &*(*port_stream).lpVtbl;
            if let Some(add_ref) = vtbl.AddRef {
                add_ref(port_stream);
            }
        }
        // SAFETY: `p` is live.
        let format = unsafe { (*(*p).model.get()).format() };
        control::stream_opened(format.rate, format.channels);
        Some(p)
    }

    fn allocate(&mut self, requested: ULONG, notifications: ULONG, out: BufferOut) -> NTSTATUS {
        // SAFETY: PortCls serialises stream calls and the timer is not running in STOP.
        let model = unsafe { &mut *self.model.get() };
        let geometry = match model.allocate_buffer(requested, notifications) {
            Ok(g) => g,
            Err(status) => return status,
        };
        // SAFETY: port_stream is live (we hold a reference).
        let vtbl = unsafe { &*(*self.port_stream).lpVtbl };
        let (Some(alloc), Some(map), Some(free)) = (
            vtbl.AllocatePagesForMdl,
            vtbl.MapAllocatedPages,
            vtbl.FreePagesFromMdl,
        ) else {
            model.free_buffer();
            return STATUS_NOT_SUPPORTED;
        };
        let any_address = LARGE_INTEGER { QuadPart: -1 };
        // SAFETY: PortCls' allocator; the MDL is ours until FreePagesFromMdl.
        let mdl = unsafe { alloc(self.port_stream, any_address, geometry.bytes as SIZE_T) };
        let short = !mdl.is_null() && {
            // SAFETY: a non-null MDL just returned by PortCls.
            let bytes = unsafe { crate::ddk::access::mdl_byte_count(mdl) };
            bytes < geometry.bytes as usize
        };
        if mdl.is_null() || short {
            if !mdl.is_null() {
                // SAFETY: frees the MDL just allocated.
                unsafe { free(self.port_stream, mdl) };
            }
            model.free_buffer();
            return STATUS_INSUFFICIENT_RESOURCES;
        }
        // SAFETY: maps the pages just allocated.
        let va = unsafe { map(self.port_stream, mdl, MM_CACHED) }.cast::<u8>();
        if va.is_null() {
            // SAFETY: as above.
            unsafe { free(self.port_stream, mdl) };
            model.free_buffer();
            return STATUS_INSUFFICIENT_RESOURCES;
        }
        // SAFETY: `va` maps `geometry.bytes` writable bytes: start from silence.
        unsafe { write_bytes(va, 0, geometry.bytes as usize) };
        self.mdl = mdl;
        self.buffer = va;
        self.buffer_bytes = geometry.bytes as usize;
        self.position.store(0, Ordering::Release);
        self.packets.publish(model);
        // SAFETY: PortCls passes valid out pointers.
        unsafe {
            *out.mdl = mdl;
            *out.actual = geometry.bytes;
            *out.offset = 0;
            *out.cache = MM_CACHED;
        }
        STATUS_SUCCESS
    }

    fn free_buffer(&mut self) {
        if self.mdl.is_null() {
            return;
        }
        // PortCls frees only after STOP; if it ever did not, the callback must be out of
        // the buffer before it goes away.
        self.stop_timer();
        // SAFETY: port_stream is live; the mapping and MDL came from it.
        unsafe {
            let vtbl = &*(*self.port_stream).lpVtbl;
            if let Some(unmap) = vtbl.UnmapAllocatedPages {
                unmap(self.port_stream, self.buffer.cast(), self.mdl);
            }
            if let Some(free) = vtbl.FreePagesFromMdl {
                free(self.port_stream, self.mdl);
            }
            (*self.model.get()).free_buffer();
            self.packets.publish(&*self.model.get());
        }
        self.mdl = null_mut();
        self.buffer = null_mut();
        self.buffer_bytes = 0;
    }

    /// Cancels the periodic timer and waits until no callback is running.
    fn stop_timer(&self) {
        if self.timer.is_null() {
            return;
        }
        // SAFETY: the timer lives until st_release deletes it; called at PASSIVE_LEVEL.
        unsafe {
            ExCancelTimer(self.timer, null_mut());
            KeFlushQueuedDpcs();
        }
        while self.in_tick.load(Ordering::Acquire) != 0 {
            // SAFETY: busy-wait a few microseconds for a callback on another CPU.
            unsafe { KeStallExecutionProcessor(5) };
        }
    }
}

struct BufferOut {
    mdl: *mut PMDL,
    actual: *mut ULONG,
    offset: *mut ULONG,
    cache: *mut MEMORY_CACHING_TYPE,
}

/// The 1 ms high-resolution timer callback, at DISPATCH_LEVEL: fill the cyclic buffer
/// through the gate. No allocation, no lock; only bounds-check panics on an internal bug.
unsafe extern "C" fn timer_callback(_timer: PEX_TIMER, context: PVOID) {
    // SAFETY: the context is the stream, which deletes this timer (waiting for callbacks)
    // before it is freed.
    let s = unsafe { &*context.cast::<WaveStream>() };
    s.in_tick.fetch_add(1, Ordering::AcqRel);
    let (now, _) = qpc();
    if !s.buffer.is_null() {
        // SAFETY: while the timer runs, this callback is the only user of the model and the
        // buffer (see the module docs); the buffer maps `buffer_bytes` bytes.
        let (model, buffer) = unsafe {
            (
                &mut *s.model.get(),
                core::slice::from_raw_parts_mut(s.buffer, s.buffer_bytes),
            )
        };
        let report = control::with_bridge(|ring| match ring {
            Some((reader, channels)) => {
                model.tick(now, control::control_block(), reader, channels, buffer)
            }
            None => model.tick(
                now,
                control::control_block(),
                &mut hardmute_windows_model::stream::NoBridge,
                1,
                buffer,
            ),
        });
        s.position
            .store(model.position().write_offset, Ordering::Release);
        s.packets.publish(model);
        let event = s.event.load(Ordering::Acquire);
        if report.signal && !event.is_null() {
            // SAFETY: the event stays valid until UnregisterNotificationEvent, which PortCls
            // calls only after stopping the stream (timer stopped and flushed).
            unsafe { KeSetEvent(event, 0, 0) };
        }
    }
    s.in_tick.fetch_sub(1, Ordering::Release);
}

unsafe extern "C" fn st_query_interface(this: This, iid: *const IID, out: *mut PVOID) -> NTSTATUS {
    // SAFETY: PortCls passes a valid IID and out pointer.
    let iid = unsafe { &*iid };
    let known = [
        IID_IUNKNOWN,
        IID_IMINIPORT_WAVERT_STREAM,
        IID_IMINIPORT_WAVERT_STREAM_NOTIFICATION,
    ];
    if known.iter().any(|i| guid_eq(i, iid)) {
        // SAFETY: live object; one vtable serves all three interfaces (prefix-compatible).
        unsafe {
            st_add_ref(this);
            *out = this.cast();
        }
        STATUS_SUCCESS
    } else if guid_eq(&IID_IMINIPORT_WAVERT_INPUT_STREAM, iid) {
        // Every stream of this miniport is a capture stream (NewStream refuses render).
        // SAFETY: live object; the interface pointer is the address of its `input_vtbl`.
        unsafe {
            st_add_ref(this);
            *out = core::ptr::addr_of!((*this.cast::<WaveStream>()).input_vtbl)
                .cast_mut()
                .cast();
        }
        STATUS_SUCCESS
    } else {
        // SAFETY: valid out pointer.
        unsafe { *out = null_mut() };
        STATUS_INVALID_PARAMETER
    }
}

unsafe extern "C" fn st_add_ref(this: This) -> ULONG {
    // SAFETY: live stream.
    unsafe { stream(this) }.refs.fetch_add(1, Ordering::Relaxed) + 1
}

unsafe extern "C" fn st_release(this: This) -> ULONG {
    let p = this.cast::<WaveStream>();
    // SAFETY: live stream; teardown runs once, on the last reference, at PASSIVE_LEVEL.
    unsafe {
        let left = (*p).refs.fetch_sub(1, Ordering::AcqRel) - 1;
        if left != 0 {
            return left;
        }
        // Buffer first (free_buffer stops the timer and waits out a running callback),
        // then delete the timer, waiting again, so no callback can see the freed stream.
        (*p).free_buffer();
        ExDeleteTimer((*p).timer, 1, 1, null_mut());
        (*p).timer = null_mut();
        if let Some(release) = (*(*(*p).port_stream).lpVtbl).Release {
            release((*p).port_stream);
        }
        let miniport = (*p).miniport;
        (*miniport).model.with(|m| m.stream_closed());
        mp_release(miniport.cast());
        control::stream_closed();
        pool::free(p, pool::TAG_WAVE_STREAM);
        0
    }
}

unsafe extern "C" fn st_set_format(this: This, format: PKSDATAFORMAT) -> NTSTATUS {
    // SAFETY: PortCls validated FormatSize against the request.
    let bytes = unsafe { ks_bytes(format) };
    let format = match parse_stream_format(bytes) {
        Ok(f) => f,
        Err(status) => return status,
    };
    // SAFETY: serialised stream call; the model refuses unless STOP/ACQUIRE (timer stopped).
    let model = unsafe { &mut *stream(this).model.get() };
    match model.set_format(format) {
        Ok(()) => {
            control::stream_opened(format.rate, format.channels);
            STATUS_SUCCESS
        }
        Err(status) => status,
    }
}

unsafe extern "C" fn st_set_state(this: This, state: KSSTATE::Type) -> NTSTATUS {
    let Some(new) = KsState::from_raw(state as u32) else {
        return STATUS_INVALID_PARAMETER;
    };
    // SAFETY: live stream.
    let s = unsafe { stream(this) };
    // SAFETY: serialised stream call; the timer is stopped before the model is touched.
    let before = unsafe { &*s.model.get() }.timer_action_for(new);
    if before == TimerAction::Stop {
        s.stop_timer();
    }
    // SAFETY: the timer is not running now (stopped above, or never started in this state).
    let model = unsafe { &mut *s.model.get() };
    let (now, _) = qpc();
    let result = model.set_state(new, now);
    s.packets.publish(model);
    match result {
        Ok(TimerAction::Start) => {
            // SAFETY: the timer lives as long as the stream. Due in 1 ms, then every 1 ms.
            unsafe { ExSetTimer(s.timer, -ONE_MS_IN_100NS, ONE_MS_IN_100NS, null_mut()) };
            control::stream_running(true);
            STATUS_SUCCESS
        }
        Ok(_) => {
            s.position
                .store(model.position().write_offset, Ordering::Release);
            control::stream_running(new == KsState::Run);
            STATUS_SUCCESS
        }
        Err(status) => status,
    }
}

unsafe extern "C" fn st_get_position(this: This, position: PKSAUDIO_POSITION) -> NTSTATUS {
    // SAFETY: live stream; valid out pointer.
    let offset = unsafe { stream(this) }.position.load(Ordering::Acquire);
    // SAFETY: valid out pointer.
    unsafe {
        (*position).PlayOffset = offset;
        (*position).WriteOffset = offset;
    }
    STATUS_SUCCESS
}

unsafe extern "C" fn st_allocate_audio_buffer(
    this: This,
    requested: ULONG,
    mdl: *mut PMDL,
    actual: *mut ULONG,
    offset: *mut ULONG,
    cache: *mut MEMORY_CACHING_TYPE,
) -> NTSTATUS {
    // SAFETY: live stream, serialised call.
    let s = unsafe { &mut *this.cast::<WaveStream>() };
    s.allocate(
        requested,
        0,
        BufferOut {
            mdl,
            actual,
            offset,
            cache,
        },
    )
}

unsafe extern "C" fn st_allocate_buffer_with_notification(
    this: This,
    notifications: ULONG,
    requested: ULONG,
    mdl: *mut PMDL,
    actual: *mut ULONG,
    offset: *mut ULONG,
    cache: *mut MEMORY_CACHING_TYPE,
) -> NTSTATUS {
    // SAFETY: live stream, serialised call.
    let s = unsafe { &mut *this.cast::<WaveStream>() };
    s.allocate(
        requested,
        notifications,
        BufferOut {
            mdl,
            actual,
            offset,
            cache,
        },
    )
}

unsafe extern "C" fn st_free_audio_buffer(this: This, _mdl: PMDL, _size: ULONG) {
    // SAFETY: live stream, serialised call (PortCls frees only in STOP).
    let s = unsafe { &mut *this.cast::<WaveStream>() };
    s.free_buffer();
}

unsafe extern "C" fn st_get_hw_latency(_this: This, latency: *mut KSRTAUDIO_HWLATENCY) {
    // No FIFO, chipset or codec between the timer and the buffer.
    // SAFETY: valid out pointer.
    unsafe {
        *latency = KSRTAUDIO_HWLATENCY {
            FifoSize: 0,
            ChipsetDelay: 0,
            CodecDelay: 0,
        }
    };
}

unsafe extern "C" fn st_no_register(_this: This, _register: *mut KSRTAUDIO_HWREGISTER) -> NTSTATUS {
    // No hardware position/clock register: the engine uses GetPosition.
    STATUS_NOT_SUPPORTED
}

unsafe extern "C" fn st_register_event(this: This, event: PKEVENT) -> NTSTATUS {
    // SAFETY: live stream.
    let s = unsafe { stream(this) };
    match s
        .event
        .compare_exchange(null_mut(), event, Ordering::AcqRel, Ordering::Acquire)
    {
        Ok(_) => STATUS_SUCCESS,
        Err(_) => STATUS_DEVICE_BUSY,
    }
}

unsafe extern "C" fn st_unregister_event(this: This, event: PKEVENT) -> NTSTATUS {
    // SAFETY: live stream.
    let s = unsafe { stream(this) };
    match s
        .event
        .compare_exchange(event, null_mut(), Ordering::AcqRel, Ordering::Acquire)
    {
        Ok(_) => STATUS_SUCCESS,
        Err(_) => STATUS_INVALID_PARAMETER,
    }
}

// ---------------------------------------------------------------- IMiniportWaveRTInputStream

unsafe extern "C" fn in_query_interface(
    this: InputThis,
    iid: *const IID,
    out: *mut PVOID,
) -> NTSTATUS {
    // SAFETY: `this` points at a live stream's `input_vtbl`; same contract as the main one.
    unsafe { st_query_interface(from_input(this), iid, out) }
}

unsafe extern "C" fn in_add_ref(this: InputThis) -> ULONG {
    // SAFETY: as above.
    unsafe { st_add_ref(from_input(this)) }
}

unsafe extern "C" fn in_release(this: InputThis) -> ULONG {
    // SAFETY: as above.
    unsafe { st_release(from_input(this)) }
}

/// Packet-mode capture: which packet to read next and its QPC timestamp (the model's
/// `ReadCursor`); `STATUS_DEVICE_NOT_READY` while none is complete. PASSIVE_LEVEL.
unsafe extern "C" fn in_get_read_packet(
    this: InputThis,
    packet_number: *mut ULONG,
    flags: *mut DWORD,
    performance_counter: *mut ULONG64,
    more_data: *mut BOOL,
) -> NTSTATUS {
    // SAFETY: live stream behind its input interface.
    let s = unsafe { stream(from_input(this)) };
    match s.read_cursor.with(|cursor| cursor.read(&s.packets)) {
        Ok(packet) => {
            // SAFETY: PortCls passes valid out pointers.
            unsafe {
                *packet_number = packet.packet_number;
                *flags = packet.flags as DWORD;
                *performance_counter = packet.performance_counter;
                *more_data = BOOL::from(packet.more_data);
            }
            STATUS_SUCCESS
        }
        Err(status) => status,
    }
}
