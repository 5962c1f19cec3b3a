//! PortCls's driving role against the wave miniport's real vtables: once StartDevice has
//! registered the subdevices, a thread opens a capture stream at every format the capture
//! pin's data ranges offer, runs it on the timer, and checks the cyclic buffer, positions,
//! packets and notifications. Results go to the log as `stream ok ...` / `stream FAIL ...`
//! lines, closed by `stream test done: N passed, M failed`.
//!
//! The calls and their order follow the WDK:
//! - IMiniport::DataRangeIntersection (size query, then the format):
//!   https://learn.microsoft.com/windows-hardware/drivers/ddi/portcls/nf-portcls-iminiport-datarangeintersection
//! - IMiniportWaveRT::NewStream:
//!   https://learn.microsoft.com/windows-hardware/drivers/ddi/portcls/nf-portcls-iminiportwavert-newstream
//! - IMiniportWaveRTStreamNotification::AllocateBufferWithNotification,
//!   RegisterNotificationEvent, UnregisterNotificationEvent, FreeBufferWithNotification:
//!   https://learn.microsoft.com/windows-hardware/drivers/ddi/portcls/nn-portcls-iminiportwavertstreamnotification
//! - IMiniportWaveRTStream::SetFormat / SetState (one step at a time, STOP<->ACQUIRE<->PAUSE<->RUN)
//!   / GetPosition:
//!   https://learn.microsoft.com/windows-hardware/drivers/ddi/portcls/nf-portcls-iminiportwavertstream-setstate
//! - IMiniportWaveRTInputStream::GetReadPacket:
//!   https://learn.microsoft.com/windows-hardware/drivers/ddi/portcls/nf-portcls-iminiportwavertinputstream-getreadpacket
//! - IPortWaveRTStream::AllocatePagesForMdl / MapAllocatedPages:
//!   https://learn.microsoft.com/windows-hardware/drivers/ddi/portcls/nn-portcls-iportwavertstream

use crate::ddk::extra::*;
use crate::ddk::*;
use crate::guids::*;
use crate::port::{query, release, Kind, ADAPTER, STATUS_NOT_IMPLEMENTED, STATUS_SUCCESS};
use crate::win32::{self, qpc, CreateThread, Sleep};
use core::ffi::c_void;
use core::ptr::null_mut;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering::*};
use hardmute_windows_model::format::{parse_stream_format, SampleFormat, StreamFormat};

#[link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim")]
unsafe extern "C" {
    fn KeInitializeEvent(event: PRKEVENT, kind: u32, state: BOOLEAN);
    fn KeWaitForSingleObject(
        object: PVOID,
        reason: u32,
        mode: KPROCESSOR_MODE,
        alertable: BOOLEAN,
        timeout: *mut LARGE_INTEGER,
    ) -> NTSTATUS;
}

const STATUS_BUFFER_OVERFLOW: NTSTATUS = 0x8000_0005u32 as i32;
const STATUS_DEVICE_NOT_READY: NTSTATUS = 0xC000_00A3u32 as i32;
const SYNCHRONIZATION_EVENT: u32 = 1;
/// Packets per buffer asked for (AllocateBufferWithNotification's NotificationCount).
const NOTIFICATIONS: u32 = 2;
/// Buffer asked for: 400 ms at the format's byte rate (two 200 ms packets): long enough that
/// a position sampled on a loaded machine is never a whole buffer off (which would make the
/// cyclic comparison ambiguous).
const BUFFER_MS: u32 = 400;
/// How far behind QPC the position may be: the timer thread (an ordinary thread under Wine,
/// not a DPC) runs late on a busy machine; the driver writes every frame due when it runs.
const MAX_LAG_MS: i64 = 150;

static PASSED: AtomicU32 = AtomicU32::new(0);
static FAILED: AtomicU32 = AtomicU32::new(0);

pub(crate) fn check(ok: bool, args: core::fmt::Arguments) -> bool {
    if ok {
        PASSED.fetch_add(1, SeqCst);
        say!("stream ok {}", args);
    } else {
        FAILED.fetch_add(1, SeqCst);
        say!("stream FAIL {}", args);
    }
    ok
}
macro_rules! check {
    ($ok:expr, $($t:tt)*) => { check($ok, format_args!($($t)*)) };
}

/// Called by PcDispatchIrp after StartDevice succeeded: the stream test runs on its own
/// thread (the PnP IRP completes meanwhile, as with PortCls, where KS opens come later).
pub fn device_started() {
    // SAFETY: a thread running `stream_thread`; its handle is not needed.
    let h = unsafe { CreateThread(null_mut(), 0, stream_thread, null_mut(), 0, null_mut()) };
    if h.is_null() {
        say!("stream FAIL CreateThread for the stream test");
        say!("stream test done: 0 passed, 1 failed");
    } else {
        // SAFETY: our handle.
        unsafe { win32::CloseHandle(h) };
    }
}

unsafe extern "system" fn stream_thread(_param: *mut c_void) -> u32 {
    // SAFETY: the registered ports stay registered (we hold references) while this runs.
    unsafe { run_all() };
    say!(
        "stream test done: {} passed, {} failed",
        PASSED.load(SeqCst),
        FAILED.load(SeqCst)
    );
    0
}

// ---- IPortWaveRTStream --------------------------------------------------------------------

#[repr(C)]
struct PortStream {
    vtbl: *const IPortWaveRTStreamVtbl,
    refs: AtomicU32,
}

/// Our MDL: the MDL header the driver reads (ByteCount, MappedSystemVa) + the pages.
#[repr(C)]
struct Pages {
    mdl: MDL,
    memory: *mut u8,
    bytes: usize,
}

static PORT_STREAM_VTBL: IPortWaveRTStreamVtbl = IPortWaveRTStreamVtbl {
    QueryInterface: Some(ps_query_interface),
    AddRef: Some(ps_add_ref),
    Release: Some(ps_release),
    AllocatePagesForMdl: Some(ps_allocate_pages),
    AllocateContiguousPagesForMdl: Some(ps_allocate_contiguous),
    MapAllocatedPages: Some(ps_map),
    UnmapAllocatedPages: Some(ps_unmap),
    FreePagesFromMdl: Some(ps_free),
    GetPhysicalPagesCount: Some(ps_pages_count),
    GetPhysicalPageAddress: Some(ps_page_address),
};

/// Pages allocated and not yet freed by the driver (must be 0 after each stream).
static PAGES_LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn ps_query_interface(
    this: *mut IPortWaveRTStream,
    iid: *const IID,
    out: *mut PVOID,
) -> NTSTATUS {
    // SAFETY: COM contract.
    unsafe {
        if crate::ddk::access::guid_eq(&*iid, &IID_IUNKNOWN) {
            ps_add_ref(this);
            *out = this.cast();
            return STATUS_SUCCESS;
        }
        *out = null_mut();
    }
    0xC000_02B9u32 as i32
}
unsafe extern "C" fn ps_add_ref(this: *mut IPortWaveRTStream) -> ULONG {
    // SAFETY: live object.
    unsafe { &*this.cast::<PortStream>() }
        .refs
        .fetch_add(1, SeqCst)
        + 1
}
unsafe extern "C" fn ps_release(this: *mut IPortWaveRTStream) -> ULONG {
    // SAFETY: live object; the stand-in frees it after checking the count (not here).
    unsafe { &*this.cast::<PortStream>() }
        .refs
        .fetch_sub(1, SeqCst)
        - 1
}
unsafe extern "C" fn ps_allocate_pages(
    _this: *mut IPortWaveRTStream,
    _high: PHYSICAL_ADDRESS,
    bytes: SIZE_T,
) -> PMDL {
    let bytes = bytes as usize;
    // SAFETY: pool allocations, freed in ps_free.
    unsafe {
        let memory = ExAllocatePoolWithTag(
            NON_PAGED_POOL_NX,
            bytes as SIZE_T,
            u32::from_le_bytes(*b"HmPg"),
        )
        .cast::<u8>();
        let pages = ExAllocatePoolWithTag(
            NON_PAGED_POOL_NX,
            core::mem::size_of::<Pages>() as SIZE_T,
            u32::from_le_bytes(*b"HmMd"),
        )
        .cast::<Pages>();
        if memory.is_null() || pages.is_null() {
            return null_mut();
        }
        let mut mdl: MDL = core::mem::zeroed();
        mdl.Size = core::mem::size_of::<MDL>() as i16;
        mdl.StartVa = memory.cast();
        mdl.ByteCount = bytes as ULONG;
        pages.write(Pages { mdl, memory, bytes });
        PAGES_LIVE.fetch_add(1, SeqCst);
        pages.cast()
    }
}
unsafe extern "C" fn ps_allocate_contiguous(
    this: *mut IPortWaveRTStream,
    _low: PHYSICAL_ADDRESS,
    high: PHYSICAL_ADDRESS,
    bytes: SIZE_T,
) -> PMDL {
    // SAFETY: same contract.
    unsafe { ps_allocate_pages(this, high, bytes) }
}
unsafe extern "C" fn ps_map(
    _this: *mut IPortWaveRTStream,
    mdl: PMDL,
    _cache: MEMORY_CACHING_TYPE,
) -> PVOID {
    // SAFETY: an MDL from ps_allocate_pages.
    unsafe {
        let p = mdl.cast::<Pages>();
        (*p).mdl.MappedSystemVa = (*p).memory.cast();
        (*p).mdl.MdlFlags |= MDL_MAPPED_TO_SYSTEM_VA;
        (*p).memory.cast()
    }
}
unsafe extern "C" fn ps_unmap(_this: *mut IPortWaveRTStream, _va: PVOID, _mdl: PMDL) {}
unsafe extern "C" fn ps_free(_this: *mut IPortWaveRTStream, mdl: PMDL) {
    // SAFETY: an MDL from ps_allocate_pages, freed once.
    unsafe {
        let p = mdl.cast::<Pages>();
        ExFreePoolWithTag((*p).memory.cast(), 0);
        ExFreePoolWithTag(p.cast(), 0);
    }
    PAGES_LIVE.fetch_sub(1, SeqCst);
}
unsafe extern "C" fn ps_pages_count(_this: *mut IPortWaveRTStream, mdl: PMDL) -> ULONG {
    // SAFETY: an MDL from ps_allocate_pages.
    unsafe { (*mdl.cast::<Pages>()).bytes.div_ceil(4096) as ULONG }
}
unsafe extern "C" fn ps_page_address(
    _this: *mut IPortWaveRTStream,
    _mdl: PMDL,
    _index: ULONG,
) -> PHYSICAL_ADDRESS {
    LARGE_INTEGER { QuadPart: 0 }
}

// ---- the test ------------------------------------------------------------------------------

/// # Safety
/// Runs after StartDevice; the wave port holds the miniport.
unsafe fn run_all() {
    let wave = ADAPTER.wave.load(SeqCst);
    if wave.is_null() {
        check!(false, "no wave subdevice was registered");
        return;
    }
    // SAFETY: a registered port (we hold a reference).
    let port = unsafe { &*wave };
    debug_assert_eq!(port.kind, Kind::WaveRt);
    let miniport = port.miniport.load(SeqCst).cast::<IMiniportWaveRT>();
    let description = port.description.load(SeqCst);
    if miniport.is_null() || description.is_null() {
        check!(false, "the wave port has no miniport or description");
        return;
    }
    check!(
        !ADAPTER.topology.load(SeqCst).is_null() && ADAPTER.connections.load(SeqCst) == 1,
        "StartDevice registered Topology + Wave and {} physical connection(s)",
        ADAPTER.connections.load(SeqCst)
    );
    // SAFETY: the miniport's static descriptor.
    let d = unsafe { &*description };
    // The capture pin: data flows out of the filter to the host (KSPIN_DATAFLOW_OUT = 2)
    // and the host connects to it (KSPIN_COMMUNICATION_SINK).
    let mut capture = None;
    for i in 0..d.PinCount {
        // SAFETY: PinCount descriptors of PinSize bytes each.
        let pin = unsafe {
            &*d.Pins
                .cast::<u8>()
                .add((i * d.PinSize) as usize)
                .cast::<PCPIN_DESCRIPTOR>()
        };
        if pin.KsPinDescriptor.DataFlow == 2
            && pin.KsPinDescriptor.Communication == KSPIN_COMMUNICATION::KSPIN_COMMUNICATION_SINK
        {
            capture = Some((i, pin));
        }
    }
    let Some((pin_id, pin)) = capture else {
        check!(false, "the wave filter has no capture (OUT, SINK) pin");
        return;
    };
    let ranges = pin.KsPinDescriptor.DataRangesCount;
    say!("capture pin {pin_id}: {ranges} data ranges");
    let mut formats = 0;
    // The audio-through-the-ring test's format: 48 kHz stereo, float preferred.
    let mut audio_format: Option<Format> = None;
    for r in 0..ranges {
        // SAFETY: DataRangesCount pointers to KSDATARANGE_AUDIO (audio pin).
        let ours = unsafe { *pin.KsPinDescriptor.DataRanges.add(r as usize) };
        let audio = unsafe { &*ours.cast::<KSDATARANGE_AUDIO>() };
        // Every channel count and container size in the range, at its rate.
        for channels in 1..=audio.MaximumChannels {
            // Container sizes: a 24-bit client range matches nothing by design (24-in-32 is
            // chosen only by an explicit client format, see the model's format.rs).
            for bits in [16u32, 32] {
                if bits < audio.MinimumBitsPerSample || bits > audio.MaximumBitsPerSample {
                    continue;
                }
                let mut client = *audio;
                client.MaximumChannels = channels;
                client.MinimumBitsPerSample = bits;
                client.MaximumBitsPerSample = bits;
                // SAFETY: live miniport; `ours` is its own range pointer.
                if let Some(format) = unsafe { intersect(miniport, pin_id, &mut client, ours) } {
                    formats += 1;
                    // The first format runs for 3 s, the others for 1 s.
                    let run_ms = if formats == 1 { 3000 } else { 1000 };
                    // SAFETY: as above.
                    unsafe { run_stream(miniport, pin_id, &format, run_ms, false) };
                    let better = |f: &Format| {
                        crate::audio::wanted(&f.parsed)
                            && (audio_format.is_none()
                                || matches!(f.parsed.sample, SampleFormat::Float32))
                    };
                    if better(&format) {
                        audio_format = Some(format);
                    }
                }
            }
        }
    }
    check!(
        formats >= 4,
        "{formats} formats run from {ranges} data ranges"
    );
    // Audio through the ring (the probe's bridge feeding a known signal), on one more stream.
    match audio_format {
        // SAFETY: as above.
        Some(format) => unsafe { run_stream(miniport, pin_id, &format, 0, true) },
        None => {
            check!(
                false,
                "no 48 kHz stereo format for the audio-through-the-ring test"
            );
        }
    }
    check!(
        PAGES_LIVE.load(SeqCst) == 0,
        "every buffer the driver allocated was freed ({} left)",
        PAGES_LIVE.load(SeqCst)
    );
    check!(
        crate::gaps::TICKS.load(SeqCst) > 0,
        "{} timer callbacks ran in total",
        crate::gaps::TICKS.load(SeqCst)
    );
}

/// A resultant KSDATAFORMAT_WAVEFORMATEXTENSIBLE (64 + 40 bytes).
#[derive(Clone, Copy)]
struct Format {
    bytes: [u8; 104],
    parsed: StreamFormat,
}

/// DataRangeIntersection: size query first, then the format.
///
/// # Safety
/// Live miniport; `ours` is one of its capture pin's ranges.
unsafe fn intersect(
    miniport: *mut IMiniportWaveRT,
    pin: u32,
    client: &mut KSDATARANGE_AUDIO,
    ours: PKSDATARANGE,
) -> Option<Format> {
    // SAFETY: per the contract.
    let f = unsafe { (*(*miniport).lpVtbl).DataRangeIntersection? };
    let client_ptr = (client as *mut KSDATARANGE_AUDIO).cast::<KSDATARANGE>();
    let mut len = 0u32;
    // SAFETY: size query (no output buffer).
    let status = unsafe { f(miniport, pin, client_ptr, ours, 0, null_mut(), &mut len) };
    if !check!(
        status == STATUS_BUFFER_OVERFLOW && len == 104,
        "DataRangeIntersection size query ({} ch, {} bit, {} Hz): {status:#x}, {len} bytes",
        client.MaximumChannels,
        client.MaximumBitsPerSample,
        client.MaximumSampleFrequency
    ) {
        return None;
    }
    let mut bytes = [0u8; 104];
    // SAFETY: a 104-byte output buffer.
    let status = unsafe {
        f(
            miniport,
            pin,
            client_ptr,
            ours,
            104,
            bytes.as_mut_ptr().cast(),
            &mut len,
        )
    };
    let parsed = parse_stream_format(&bytes);
    let ok = status == STATUS_SUCCESS
        && matches!(parsed, Ok(p) if u32::from(p.channels) == client.MaximumChannels
            && p.rate == client.MaximumSampleFrequency
            && u32::from(p.sample.container_bits()) == client.MaximumBitsPerSample);
    check!(
        ok,
        "DataRangeIntersection: {status:#x}, format {:?}",
        parsed
    );
    if !ok {
        return None;
    }
    Some(Format {
        bytes,
        parsed: parsed.ok()?,
    })
}

/// Waits on the registered event in a thread and counts signals.
struct EventCounter {
    event: *mut KEVENT,
    count: AtomicU32,
    stop: core::sync::atomic::AtomicBool,
    thread: win32::H,
}

unsafe extern "system" fn event_thread(param: *mut c_void) -> u32 {
    // SAFETY: the counter outlives the thread (joined before it is freed).
    let c = unsafe { &*param.cast::<EventCounter>() };
    while !c.stop.load(SeqCst) {
        let mut timeout = LARGE_INTEGER {
            QuadPart: -10 * 10_000,
        };
        // SAFETY: a KEVENT initialised by KeInitializeEvent, alive until the join.
        let status = unsafe { KeWaitForSingleObject(c.event.cast(), 0, 0, 0, &mut timeout) };
        if status == STATUS_SUCCESS {
            c.count.fetch_add(1, SeqCst);
        }
    }
    0
}

fn state_name(s: KSSTATE::Type) -> &'static str {
    match s {
        KSSTATE::KSSTATE_STOP => "STOP",
        KSSTATE::KSSTATE_ACQUIRE => "ACQUIRE",
        KSSTATE::KSSTATE_PAUSE => "PAUSE",
        _ => "RUN",
    }
}

/// One stream at `format`: allocate, register the event, STOP->ACQUIRE->PAUSE->RUN, sample
/// for `run_ms`, RUN->...->STOP, RUN again briefly (restart), then tear down.
///
/// # Safety
/// Live miniport.
/// With `audio`, the RUN phase is [`crate::audio::run`] instead of the position/packet checks.
unsafe fn run_stream(
    miniport: *mut IMiniportWaveRT,
    pin: u32,
    format: &Format,
    run_ms: u32,
    audio: bool,
) {
    let fmt = format.parsed;
    let label = Label(fmt);
    let mut port_stream = PortStream {
        vtbl: &PORT_STREAM_VTBL,
        refs: AtomicU32::new(1),
    };
    let ps = (&mut port_stream as *mut PortStream).cast::<IPortWaveRTStream>();
    let mut bytes = format.bytes;
    let mut stream: PMINIPORTWAVERTSTREAM = null_mut();
    // SAFETY: live miniport; the format bytes outlive the call.
    let status = unsafe {
        (*(*miniport).lpVtbl)
            .NewStream
            .map_or(STATUS_NOT_IMPLEMENTED, |f| {
                f(miniport, &mut stream, ps, pin, 1, bytes.as_mut_ptr().cast())
            })
    };
    if !check!(
        status == STATUS_SUCCESS && !stream.is_null(),
        "{label} NewStream: {status:#x}"
    ) {
        return;
    }
    // SAFETY: the stream's interfaces, each QueryInterface adding a reference.
    let notification = unsafe { query(stream.cast(), &IID_IMINIPORT_WAVERT_STREAM_NOTIFICATION) }
        .map(|p| p.cast::<IMiniportWaveRTStreamNotification>());
    let input = unsafe { query(stream.cast(), &IID_IMINIPORT_WAVERT_INPUT_STREAM) }
        .map(|p| p.cast::<IMiniportWaveRTInputStream>());
    check!(
        notification.is_some() && input.is_some(),
        "{label} QueryInterface: notification {}, input stream (GetReadPacket) {}",
        notification.is_some(),
        input.is_some()
    );
    let (Some(notification), Some(input)) = (notification, input) else {
        // SAFETY: our references.
        unsafe { release(stream.cast()) };
        return;
    };
    // SAFETY: live stream interfaces throughout; serialised calls as PortCls makes them.
    unsafe {
        let sv = &*(*stream).lpVtbl;
        let nv = &*(*notification).lpVtbl;
        let iv = &*(*input).lpVtbl;
        let status = sv.SetFormat.map_or(STATUS_NOT_IMPLEMENTED, |f| {
            f(stream, bytes.as_mut_ptr().cast())
        });
        check!(
            status == STATUS_SUCCESS,
            "{label} SetFormat (same format, in STOP): {status:#x}"
        );

        let requested = fmt.byte_rate() * BUFFER_MS / 1000;
        let (mut mdl, mut actual, mut offset, mut cache) = (null_mut(), 0u32, 0u32, 0);
        let status = nv
            .AllocateBufferWithNotification
            .map_or(STATUS_NOT_IMPLEMENTED, |f| {
                f(
                    notification,
                    NOTIFICATIONS,
                    requested,
                    &mut mdl,
                    &mut actual,
                    &mut offset,
                    &mut cache,
                )
            });
        let block = fmt.block_align();
        if !check!(
            status == STATUS_SUCCESS && !mdl.is_null() && actual >= block && actual.is_multiple_of(block * NOTIFICATIONS),
            "{label} AllocateBufferWithNotification({NOTIFICATIONS}, {requested}): {status:#x}, {actual} bytes"
        ) {
            release(input.cast());
            release(notification.cast());
            release(stream.cast());
            return;
        }
        let buffer = (*mdl).MappedSystemVa.cast::<u8>();
        let len = actual as usize;
        // Garbage that only the driver's ticks can turn into zeros.
        core::ptr::write_bytes(buffer, 0x5a, len);

        let event = ExAllocatePoolWithTag(
            NON_PAGED_POOL_NX,
            core::mem::size_of::<KEVENT>() as SIZE_T,
            u32::from_le_bytes(*b"HmEv"),
        )
        .cast::<KEVENT>();
        KeInitializeEvent(event, SYNCHRONIZATION_EVENT, 0);
        let status = nv
            .RegisterNotificationEvent
            .map_or(STATUS_NOT_IMPLEMENTED, |f| f(notification, event));
        check!(
            status == STATUS_SUCCESS,
            "{label} RegisterNotificationEvent: {status:#x}"
        );
        let mut counter = EventCounter {
            event,
            count: AtomicU32::new(0),
            stop: core::sync::atomic::AtomicBool::new(false),
            thread: null_mut(),
        };
        counter.thread = CreateThread(
            null_mut(),
            0,
            event_thread,
            (&counter as *const EventCounter).cast_mut().cast(),
            0,
            null_mut(),
        );

        let set = |s: KSSTATE::Type| sv.SetState.map_or(STATUS_NOT_IMPLEMENTED, |f| f(stream, s));
        let mut ok = true;
        for s in [KSSTATE::KSSTATE_ACQUIRE, KSSTATE::KSSTATE_PAUSE] {
            ok &= set(s) == STATUS_SUCCESS;
        }
        let jump = set(KSSTATE::KSSTATE_STOP);
        check!(
            jump != STATUS_SUCCESS,
            "{label} SetState PAUSE->STOP (a skipped step) refused: {jump:#x}"
        );
        let (start, freq) = qpc();
        ok &= set(KSSTATE::KSSTATE_RUN) == STATUS_SUCCESS;
        check!(ok, "{label} SetState STOP->ACQUIRE->PAUSE->RUN");

        let packet_bytes = len as u64 / u64::from(NOTIFICATIONS);
        let packet_ticks = packet_bytes as i64 * freq / i64::from(fmt.byte_rate());
        if audio {
            match sv.GetPosition {
                Some(get_position) => crate::audio::run(stream, get_position, buffer, len, fmt),
                None => {
                    check!(false, "{label} no GetPosition");
                }
            }
        } else {
            // Sample position and packets while running.
            let byte_rate = i64::from(fmt.byte_rate());
            let mut worst_lag_ms = 0i64;
            let mut ahead = 0u32;
            let mut position_ok = true;
            let mut packets = 0u32;
            let mut packet_ok = true;
            let mut packet_detail = "";
            let mut next_packet = 0u32;
            let mut reference: Option<i64> = None;
            let mut zeros_ok = true;
            let mut samples = 0;
            loop {
                Sleep(5);
                let mut pos = KSAUDIO_POSITION {
                    PlayOffset: 0,
                    WriteOffset: 0,
                };
                let s = sv
                    .GetPosition
                    .map_or(STATUS_NOT_IMPLEMENTED, |f| f(stream, &mut pos));
                // QPC read after the position: a tick that ran in between cannot put it ahead.
                let (now, _) = qpc();
                if s != STATUS_SUCCESS
                    || pos.WriteOffset >= len as u64
                    || !pos.WriteOffset.is_multiple_of(u64::from(block))
                {
                    position_ok = false;
                }
                // Where QPC says the write position is, and how far behind it the driver's is
                // (cyclic distance; "ahead" is anything more than one block in front).
                let due = ((now - start) as i128 * i128::from(byte_rate) / i128::from(freq)) as i64;
                let due_offset = due.rem_euclid(len as i64);
                let behind = (due_offset - pos.WriteOffset as i64).rem_euclid(len as i64);
                if behind > len as i64 - i64::from(block) {
                    ahead += 1;
                } else {
                    worst_lag_ms = worst_lag_ms.max(behind * 1000 / byte_rate);
                }
                // Every packet read: numbers only go up, and each is stamped exactly one packet
                // after the previous on the QPC clock (the same reference for all of them).
                loop {
                    let (mut n, mut flags, mut pc, mut more) = (0u32, 0u32, 0u64, 0i32);
                    let s = iv.GetReadPacket.map_or(STATUS_NOT_IMPLEMENTED, |f| {
                        f(input, &mut n, &mut flags, &mut pc, &mut more)
                    });
                    // After the call, for the same reason.
                    let (now, _) = qpc();
                    if s == STATUS_DEVICE_NOT_READY {
                        break;
                    }
                    if s != STATUS_SUCCESS || flags != 0 {
                        packet_ok = false;
                        packet_detail = "a status or flags other than SUCCESS/0";
                        break;
                    }
                    let r = pc as i64 - i64::from(n) * packet_ticks;
                    let reference = *reference.get_or_insert(r);
                    if (r - reference).abs() > freq / 10_000 {
                        packet_ok = false;
                        packet_detail = "a stamp off the packet grid";
                    }
                    if (r - start).abs() > freq / 100 {
                        packet_ok = false;
                        packet_detail = "packet 0 not stamped at the RUN instant";
                    }
                    if n < next_packet || pc as i64 + packet_ticks > now {
                        packet_ok = false;
                        packet_detail =
                            "a number going back, or a packet returned before it was complete";
                    }
                    next_packet = n + 1;
                    packets += 1;
                    if more == 0 {
                        break;
                    }
                }
                // Muted (a fresh driver is): every byte the ticks wrote is an exact zero.
                let written =
                    (due.max(0) as usize).saturating_sub((MAX_LAG_MS * byte_rate / 1000) as usize);
                let region = core::slice::from_raw_parts(buffer, len);
                zeros_ok &= region[..written.min(len)].iter().all(|&b| b == 0);
                samples += 1;
                if (now - start) * 1000 / freq >= i64::from(run_ms) {
                    break;
                }
            }
            let elapsed_ms = (qpc().0 - start) * 1000 / freq;
            check!(
            position_ok && ahead == 0 && worst_lag_ms <= MAX_LAG_MS,
            "{label} GetPosition follows QPC: {samples} samples in {elapsed_ms} ms, at most {worst_lag_ms} ms behind (limit {MAX_LAG_MS}), ahead {ahead} times, block-aligned {position_ok}"
        );
            let packet_ms = packet_ticks * 1000 / freq;
            let expected_packets = (elapsed_ms / packet_ms.max(1)) as u32;
            check!(
            packet_ok && packets > 0 && next_packet + 2 >= expected_packets,
            "{label} GetReadPacket: {packets} packets read, last number {} of {expected_packets} due, stamps on one {packet_ms} ms grid from RUN{}",
            next_packet.saturating_sub(1),
            if packet_ok { "" } else { packet_detail }
        );
            check!(
                zeros_ok,
                "{label} cyclic buffer: exact zeros while muted (the 0x5a fill overwritten)"
            );
            let signals = counter.count.load(SeqCst);
            check!(
                signals > 0 && signals <= next_packet + 2,
                "{label} notification event: {signals} signals for {next_packet} packets"
            );
        }

        // RUN -> STOP one step at a time, then a restart from position 0.
        let mut ok = true;
        for s in [
            KSSTATE::KSSTATE_PAUSE,
            KSSTATE::KSSTATE_ACQUIRE,
            KSSTATE::KSSTATE_STOP,
        ] {
            let r = set(s);
            if r != STATUS_SUCCESS {
                say!("{label} SetState {}: {r:#x}", state_name(s));
                ok = false;
            }
        }
        let mut pos = KSAUDIO_POSITION {
            PlayOffset: 1,
            WriteOffset: 1,
        };
        sv.GetPosition.map(|f| f(stream, &mut pos));
        check!(
            ok && pos.WriteOffset == 0,
            "{label} SetState RUN->PAUSE->ACQUIRE->STOP; position after STOP {}",
            pos.WriteOffset
        );
        // Restart: the packet numbers and stamps start again from the new RUN.
        let mut ok = true;
        for s in [KSSTATE::KSSTATE_ACQUIRE, KSSTATE::KSSTATE_PAUSE] {
            ok &= set(s) == STATUS_SUCCESS;
        }
        let (restart, _) = qpc();
        ok &= set(KSSTATE::KSSTATE_RUN) == STATUS_SUCCESS;
        let (mut n, mut flags, mut pc, mut more) = (0u32, 0u32, 0u64, 0i32);
        let mut first = STATUS_DEVICE_NOT_READY;
        let deadline = restart + freq;
        while first == STATUS_DEVICE_NOT_READY && qpc().0 < deadline {
            Sleep(5);
            first = iv.GetReadPacket.map_or(STATUS_NOT_IMPLEMENTED, |f| {
                f(input, &mut n, &mut flags, &mut pc, &mut more)
            });
        }
        let since = qpc().0 - restart;
        for s in [
            KSSTATE::KSSTATE_PAUSE,
            KSSTATE::KSSTATE_ACQUIRE,
            KSSTATE::KSSTATE_STOP,
        ] {
            ok &= set(s) == STATUS_SUCCESS;
        }
        let r = pc as i64 - i64::from(n) * packet_ticks;
        check!(
            ok && first == STATUS_SUCCESS && (r - restart).abs() <= freq / 100 && i64::from(n) * packet_ticks <= since,
            "{label} restart after STOP: first packet read is number {n} ({first:#x}), its grid starts {} us after the new RUN",
            (r - restart) * 1_000_000 / freq
        );

        counter.stop.store(true, SeqCst);
        win32::WaitForSingleObject(counter.thread, win32::INFINITE);
        win32::CloseHandle(counter.thread);
        let status = nv
            .UnregisterNotificationEvent
            .map_or(STATUS_NOT_IMPLEMENTED, |f| f(notification, event));
        check!(
            status == STATUS_SUCCESS,
            "{label} UnregisterNotificationEvent: {status:#x}"
        );
        ExFreePoolWithTag(event.cast(), 0);
        if let Some(free) = nv.FreeBufferWithNotification {
            free(notification, mdl, actual);
        }
        release(input.cast());
        release(notification.cast());
        let left = release(stream.cast());
        check!(
            left == 0 && port_stream.refs.load(SeqCst) == 1,
            "{label} stream released: {left} references left, port stream back to {}",
            port_stream.refs.load(SeqCst)
        );
    }
}

struct Label(StreamFormat);
impl core::fmt::Display for Label {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "[{} Hz {} ch {:?}]",
            self.0.rate, self.0.channels, self.0.sample
        )
    }
}
