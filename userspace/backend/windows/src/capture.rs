//! Event-driven capture of one endpoint on its own MMCSS "Pro Audio" thread, in shared mode, or
//! for the guard in exclusive mode (a format the device takes natively, chosen by
//! [`crate::format::choose_exclusive`]; refused = shared mode, and the stream says why).
//!
//! Everything COM happens on the capture thread (created, used and released there), so no
//! interface crosses threads. The per-packet loop calls nothing but WASAPI's
//! GetNextPacketSize/GetBuffer/ReleaseBuffer, QueryPerformanceCounter and the caller's callback:
//! no allocation, lock or logging on the success path (errors end the stream).

use crate::devices::{device_by_id, enumerator};
use crate::format::{
    channel_mask, choose_exclusive, MixFormat, RawFormat, SampleKind, Samples,
    WAVE_FORMAT_EXTENSIBLE,
};
use crate::policy::Sharing;
use crate::{AudioError, AudioResult, ComApartment};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use windows::core::w;
use windows::Win32::Foundation::{CloseHandle, HANDLE, WAIT_OBJECT_0, WAIT_TIMEOUT};
use windows::Win32::Media::Audio::{
    IAudioCaptureClient, IAudioClient, IMMDevice, AUDCLNT_BUFFERFLAGS_SILENT,
    AUDCLNT_E_BUFFER_SIZE_NOT_ALIGNED, AUDCLNT_SHAREMODE_EXCLUSIVE, AUDCLNT_SHAREMODE_SHARED,
    AUDCLNT_STREAMFLAGS_EVENTCALLBACK, WAVEFORMATEX, WAVEFORMATEXTENSIBLE, WAVEFORMATEXTENSIBLE_0,
};
use windows::Win32::System::Com::{CoTaskMemFree, CLSCTX_ALL};
use windows::Win32::System::Performance::{QueryPerformanceCounter, QueryPerformanceFrequency};
use windows::Win32::System::Threading::{
    AvRevertMmThreadCharacteristics, AvSetMmThreadCharacteristicsW, CreateEventW, SetEvent,
    WaitForMultipleObjects,
};

/// Shared-mode buffer WASAPI keeps for us (100 ns units): 20 ms, two engine periods.
const BUFFER_HNS: i64 = 200_000;
/// With no packet event for this long, poll the client anyway (it reports an invalidated
/// device on the next call).
const WAIT_MS: u32 = 500;

/// One capture packet as the callback sees it.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    pub samples: Samples<'a>,
    pub channels: usize,
    /// QueryPerformanceCounter read when the packet was taken (the same clock the kernel
    /// driver reads with KeQueryPerformanceCounter).
    pub qpc_now: u64,
    pub qpc_frequency: u64,
}

/// A manual-reset or auto-reset Win32 event, closed on drop.
struct Event(HANDLE);
// SAFETY: an event handle is a process-wide kernel object reference, usable from any thread.
unsafe impl Send for Event {}
// SAFETY: as above; SetEvent/Wait are thread-safe.
unsafe impl Sync for Event {}

impl Event {
    fn new(manual_reset: bool) -> AudioResult<Self> {
        // SAFETY: no pointers; an unnamed event with default security.
        unsafe { CreateEventW(None, manual_reset, false, None) }
            .map(Event)
            .map_err(|e| AudioError::from_win("CreateEventW", e))
    }
}

impl Drop for Event {
    fn drop(&mut self) {
        // SAFETY: we own the handle and close it once.
        let _ = unsafe { CloseHandle(self.0) };
    }
}

/// The performance counter and its frequency.
pub fn qpc() -> (u64, u64) {
    let (mut now, mut freq) = (0i64, 0i64);
    // SAFETY: both write one i64 through a valid pointer; they cannot fail on XP or later.
    unsafe {
        let _ = QueryPerformanceCounter(&mut now);
        let _ = QueryPerformanceFrequency(&mut freq);
    }
    (now as u64, freq.max(1) as u64)
}

/// A running capture stream; dropping it stops the stream and joins its thread.
pub struct CaptureStream {
    stop: std::sync::Arc<Event>,
    thread: Option<JoinHandle<()>>,
    format: MixFormat,
    endpoint_id: String,
    asked_exclusive: bool,
    sharing: Sharing,
}

impl CaptureStream {
    /// Opens `endpoint_id` (in exclusive mode when `exclusive`, falling back to shared mode if
    /// that is refused: [`Self::sharing`] says which) and starts capturing. `make_callback` runs
    /// on the capture thread once the format is known and returns the per-packet callback (set
    /// up there, so it may allocate; the callback itself must not). `on_end` runs on the capture
    /// thread when the stream ends by error (device unplugged...) or by [`Self::stop`].
    pub fn start<M, F, E>(
        endpoint_id: &str,
        exclusive: bool,
        make_callback: M,
        on_end: E,
    ) -> AudioResult<Self>
    where
        M: FnOnce(MixFormat) -> F + Send + 'static,
        F: FnMut(Packet<'_>),
        E: FnOnce(AudioResult<()>) + Send + 'static,
    {
        let stop = std::sync::Arc::new(Event::new(true)?);
        let (setup_tx, setup_rx) = mpsc::sync_channel(1);
        let id = endpoint_id.to_owned();
        let thread_stop = stop.clone();
        let thread = thread::Builder::new()
            .name("hardmute-capture".into())
            .spawn(move || {
                run(
                    &id,
                    exclusive,
                    &thread_stop,
                    setup_tx,
                    make_callback,
                    on_end,
                )
            })
            .map_err(|e| AudioError::new("spawning the capture thread", 0, e.to_string()))?;
        match setup_rx.recv() {
            Ok(Ok((format, sharing))) => Ok(CaptureStream {
                stop,
                thread: Some(thread),
                format,
                endpoint_id: endpoint_id.to_owned(),
                asked_exclusive: exclusive,
                sharing,
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(AudioError::new(
                    "capture thread",
                    0,
                    "ended before reporting its format",
                ))
            }
        }
    }

    pub fn format(&self) -> MixFormat {
        self.format
    }

    pub fn endpoint_id(&self) -> &str {
        &self.endpoint_id
    }

    /// Whether this stream was opened for the guard (exclusive mode asked).
    pub fn asked_exclusive(&self) -> bool {
        self.asked_exclusive
    }

    /// How the stream holds the endpoint.
    pub fn sharing(&self) -> &Sharing {
        &self.sharing
    }

    /// Stops the client (the OS microphone indicator goes off) and joins the thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(thread) = self.thread.take() {
            // SAFETY: our live event handle.
            let _ = unsafe { SetEvent(self.stop.0) };
            let _ = thread.join();
        }
    }
}

impl Drop for CaptureStream {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Opened {
    client: IAudioClient,
    capture: IAudioCaptureClient,
    packet_event: Event,
    format: MixFormat,
    sharing: Sharing,
}

/// Opens the endpoint: exclusive mode first when asked, shared mode otherwise or when exclusive
/// mode is refused (another app holds it, no native format the bridge reads): the user keeps
/// their audio and the guard reports that it does not hold.
fn open(endpoint_id: &str, exclusive: bool) -> AudioResult<Opened> {
    let device = device_by_id(&enumerator()?, endpoint_id)?;
    let mut refused = None;
    if exclusive {
        match open_exclusive(&device) {
            Ok(opened) => return Ok(opened),
            Err(e) => {
                log::warn!("guard: exclusive mode refused on {endpoint_id} ({e}); capturing in shared mode");
                refused = Some(e.to_string());
            }
        }
    }
    let mut opened = open_shared(&device)?;
    opened.sharing = Sharing::Shared {
        exclusive_refused: refused,
    };
    Ok(opened)
}

/// A `WAVEFORMATEXTENSIBLE` from its fields (what exclusive mode is asked with).
fn wave_format(raw: &RawFormat) -> WAVEFORMATEXTENSIBLE {
    let (d1, d2, d3, d4) = raw.subformat.unwrap_or_default();
    WAVEFORMATEXTENSIBLE {
        Format: WAVEFORMATEX {
            wFormatTag: WAVE_FORMAT_EXTENSIBLE,
            nChannels: raw.channels,
            nSamplesPerSec: raw.rate,
            nAvgBytesPerSec: raw.rate * u32::from(raw.block_align),
            nBlockAlign: raw.block_align,
            wBitsPerSample: raw.bits,
            cbSize: 22,
        },
        Samples: WAVEFORMATEXTENSIBLE_0 {
            wValidBitsPerSample: raw.valid_bits,
        },
        dwChannelMask: channel_mask(raw.channels),
        SubFormat: windows::core::GUID::from_values(d1, d2, d3, d4),
    }
}

// The extensible header WASAPI reads: 18 bytes of WAVEFORMATEX + 22 of extension.
const _: () = assert!(core::mem::size_of::<WAVEFORMATEXTENSIBLE>() == 40);
const _: () = assert!(core::mem::size_of::<WAVEFORMATEX>() == 18);

fn open_exclusive(device: &IMMDevice) -> AudioResult<Opened> {
    // SAFETY: COM calls on live interfaces. The mix format pointer is read (unaligned: the
    // struct is packed) and freed once with CoTaskMemFree before anything else uses it; every
    // format pointer passed to WASAPI points to a live, fully initialised WAVEFORMATEXTENSIBLE
    // whose cbSize (22) covers its extension.
    unsafe {
        let activate = || -> AudioResult<IAudioClient> {
            device
                .Activate(CLSCTX_ALL, None)
                .map_err(|e| AudioError::from_win("activating IAudioClient", e))
        };
        let mut client = activate()?;
        let mix = client
            .GetMixFormat()
            .map_err(|e| AudioError::from_win("IAudioClient::GetMixFormat", e))?;
        let mix_raw = raw_format(mix);
        CoTaskMemFree(Some(mix as *const _));
        let chosen = choose_exclusive(Some(mix_raw), |c| {
            let wfx = wave_format(&c.raw);
            client
                .IsFormatSupported(AUDCLNT_SHAREMODE_EXCLUSIVE, &wfx.Format, None)
                .0
                == 0
        })
        .ok_or_else(|| {
            AudioError::new(
                "exclusive mode",
                0,
                "the device takes none of the formats the bridge reads in exclusive mode",
            )
        })?;
        let wfx = wave_format(&chosen.raw);
        let mut period = 0i64;
        client
            .GetDevicePeriod(Some(&mut period), None)
            .map_err(|e| AudioError::from_win("IAudioClient::GetDevicePeriod", e))?;
        let init = |client: &IAudioClient, period: i64| {
            client.Initialize(
                AUDCLNT_SHAREMODE_EXCLUSIVE,
                AUDCLNT_STREAMFLAGS_EVENTCALLBACK,
                period,
                period,
                &wfx.Format,
                None,
            )
        };
        let mut result = init(&client, period);
        if let Err(e) = &result {
            if e.code() == AUDCLNT_E_BUFFER_SIZE_NOT_ALIGNED {
                // The documented dance: the aligned size in frames, as a period, on a new client.
                let frames = client
                    .GetBufferSize()
                    .map_err(|e| AudioError::from_win("IAudioClient::GetBufferSize", e))?;
                period =
                    (10_000_000.0 * f64::from(frames) / f64::from(chosen.raw.rate) + 0.5) as i64;
                client = activate()?;
                result = init(&client, period);
            }
        }
        result
            .map_err(|e| AudioError::from_win("IAudioClient::Initialize (exclusive, event)", e))?;
        log::info!(
            "guard: exclusive mode in {:?}{}",
            chosen.format,
            if chosen.from_mix {
                " (the mix format)"
            } else {
                ""
            }
        );
        finish(client, chosen.format, Sharing::Exclusive)
    }
}

fn open_shared(device: &IMMDevice) -> AudioResult<Opened> {
    // SAFETY: COM calls on live interfaces. The mix format pointer is read (unaligned: the
    // struct is packed) before it is freed once with CoTaskMemFree, after Initialize used it.
    unsafe {
        let client: IAudioClient = device
            .Activate(CLSCTX_ALL, None)
            .map_err(|e| AudioError::from_win("activating IAudioClient", e))?;
        let mix = client
            .GetMixFormat()
            .map_err(|e| AudioError::from_win("IAudioClient::GetMixFormat", e))?;
        let raw = raw_format(mix);
        let init = client.Initialize(
            AUDCLNT_SHAREMODE_SHARED,
            AUDCLNT_STREAMFLAGS_EVENTCALLBACK,
            BUFFER_HNS,
            0,
            mix,
            None,
        );
        CoTaskMemFree(Some(mix as *const _));
        init.map_err(|e| AudioError::from_win("IAudioClient::Initialize (shared, event)", e))?;
        let format = MixFormat::decode(raw)
            .map_err(|e| AudioError::new("the endpoint's mix format", 0, e.to_string()))?;
        finish(
            client,
            format,
            Sharing::Shared {
                exclusive_refused: None,
            },
        )
    }
}

/// The event handle and the capture service of an initialised client.
fn finish(client: IAudioClient, format: MixFormat, sharing: Sharing) -> AudioResult<Opened> {
    // SAFETY: COM calls on a live, initialised client; the event outlives the stream (it is
    // dropped with `Opened`, after the client is stopped).
    unsafe {
        let packet_event = Event::new(false)?;
        client
            .SetEventHandle(packet_event.0)
            .map_err(|e| AudioError::from_win("IAudioClient::SetEventHandle", e))?;
        let capture: IAudioCaptureClient = client
            .GetService()
            .map_err(|e| AudioError::from_win("GetService(IAudioCaptureClient)", e))?;
        Ok(Opened {
            client,
            capture,
            packet_event,
            format,
            sharing,
        })
    }
}

/// Copies the fields of a (possibly extensible) WAVEFORMATEX.
///
/// # Safety
/// `p` points to a valid WAVEFORMATEX whose `cbSize` bytes of extension follow it.
unsafe fn raw_format(p: *const WAVEFORMATEX) -> RawFormat {
    // SAFETY: the caller's promise; packed struct, so read unaligned.
    let base = unsafe { p.read_unaligned() };
    let mut raw = RawFormat {
        tag: base.wFormatTag,
        channels: base.nChannels,
        rate: base.nSamplesPerSec,
        block_align: base.nBlockAlign,
        bits: base.wBitsPerSample,
        valid_bits: 0,
        subformat: None,
    };
    if base.wFormatTag == WAVE_FORMAT_EXTENSIBLE && base.cbSize >= 22 {
        // SAFETY: cbSize >= 22 means the extensible tail is present.
        let ext = unsafe { p.cast::<WAVEFORMATEXTENSIBLE>().read_unaligned() };
        // SAFETY: every member of the union is a u16.
        raw.valid_bits = unsafe { ext.Samples.wValidBitsPerSample };
        let g = ext.SubFormat;
        raw.subformat = Some((g.data1, g.data2, g.data3, g.data4));
    }
    raw
}

fn run<M, F, E>(
    endpoint_id: &str,
    exclusive: bool,
    stop: &Event,
    setup: mpsc::SyncSender<AudioResult<(MixFormat, Sharing)>>,
    make_callback: M,
    on_end: E,
) where
    M: FnOnce(MixFormat) -> F,
    F: FnMut(Packet<'_>),
    E: FnOnce(AudioResult<()>),
{
    let _com = match ComApartment::multithreaded() {
        Ok(com) => com,
        Err(e) => {
            let _ = setup.send(Err(e));
            return;
        }
    };
    let opened = match open(endpoint_id, exclusive) {
        Ok(opened) => opened,
        Err(e) => {
            let _ = setup.send(Err(e));
            return;
        }
    };
    let _ = setup.send(Ok((opened.format, opened.sharing.clone())));
    let mut callback = make_callback(opened.format);
    let mut task_index = 0u32;
    // SAFETY: a static wide string and a valid out pointer; reverted below.
    let mmcss = unsafe { AvSetMmThreadCharacteristicsW(w!("Pro Audio"), &mut task_index) };
    if let Err(e) = &mmcss {
        log::warn!("MMCSS \"Pro Audio\" unavailable ({e}); capturing at normal priority");
    }
    let result = pump(&opened, stop, &mut callback);
    // SAFETY: COM call on a live client; the handle came from AvSetMmThreadCharacteristicsW.
    unsafe {
        let _ = opened.client.Stop();
        if let Ok(task) = mmcss {
            let _ = AvRevertMmThreadCharacteristics(task);
        }
    }
    on_end(result);
}

fn pump<F: FnMut(Packet<'_>)>(o: &Opened, stop: &Event, callback: &mut F) -> AudioResult<()> {
    let (_, frequency) = qpc();
    let channels = o.format.channels;
    // SAFETY: COM call on a live client.
    unsafe { o.client.Start() }.map_err(|e| AudioError::from_win("IAudioClient::Start", e))?;
    let handles = [stop.0, o.packet_event.0];
    loop {
        // SAFETY: both handles are live events owned by this stream.
        let wait = unsafe { WaitForMultipleObjects(&handles, false, WAIT_MS) };
        if wait == WAIT_OBJECT_0 {
            return Ok(());
        }
        if wait.0 != WAIT_OBJECT_0.0 + 1 && wait != WAIT_TIMEOUT {
            return Err(AudioError::new(
                "WaitForMultipleObjects",
                wait.0 as i32,
                "failed",
            ));
        }
        loop {
            // SAFETY: COM calls on a live capture client; GetBuffer's pointer is valid for
            // `frames * block_align` bytes until the matching ReleaseBuffer, and WASAPI buffers
            // are aligned for their sample type.
            unsafe {
                let pending = o
                    .capture
                    .GetNextPacketSize()
                    .map_err(|e| AudioError::from_win("GetNextPacketSize", e))?;
                if pending == 0 {
                    break;
                }
                let (mut data, mut frames, mut flags) = (std::ptr::null_mut(), 0u32, 0u32);
                o.capture
                    .GetBuffer(&mut data, &mut frames, &mut flags, None, None)
                    .map_err(|e| AudioError::from_win("IAudioCaptureClient::GetBuffer", e))?;
                let (qpc_now, _) = qpc();
                let n = frames as usize * channels;
                let samples =
                    if flags & (AUDCLNT_BUFFERFLAGS_SILENT.0 as u32) != 0 || data.is_null() {
                        Samples::Silent {
                            frames: frames as usize,
                        }
                    } else {
                        match o.format.kind {
                            SampleKind::F32 => {
                                Samples::F32(std::slice::from_raw_parts(data.cast::<f32>(), n))
                            }
                            SampleKind::I16 => {
                                Samples::I16(std::slice::from_raw_parts(data.cast::<i16>(), n))
                            }
                            SampleKind::I32 => {
                                Samples::I32(std::slice::from_raw_parts(data.cast::<i32>(), n))
                            }
                        }
                    };
                callback(Packet {
                    samples,
                    channels,
                    qpc_now,
                    qpc_frequency: frequency,
                });
                o.capture
                    .ReleaseBuffer(frames)
                    .map_err(|e| AudioError::from_win("IAudioCaptureClient::ReleaseBuffer", e))?;
            }
        }
    }
}
