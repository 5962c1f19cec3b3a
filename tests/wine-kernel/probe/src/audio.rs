//! The bridge side of "audio through the ring" (the stand-in's `src/audio.rs` is the other
//! side): registers the bridge with the daemon's own `BridgeRegistration`, then writes a known
//! signal into the ring with the daemon's own realtime step (`CaptureFeed::on_packet` into a
//! `RingWriter`, exactly what hardmuted's Windows capture callback does with WASAPI packets),
//! and sends the stand-in's mute requests with the daemon's `ControlDevice::set_mute`.
//!
//! Under Wine the driver cannot see the registered buffer (it reads a private copy), so the
//! stand-in's hook gives the driver a view of the named section [`RING_SECTION`] instead; this
//! side writes the ring through its own view of that section. The bytes written are the
//! daemon's, only the memory they land in differs.

use hardmute_backend_windows::control_device::{BridgeRegistration, ControlDevice};
use hardmute_backend_windows::feed::{
    ring_geometry, CaptureFeed, FeedStats, RING_CHANNELS, RING_FRAMES,
};
use hardmute_backend_windows::{MixFormat, SampleKind, Samples};
use hardmute_core::bridge::HostClock;
use hardmute_core::ring::{RingHeader, SharedRing};
use hardmute_core::ChangeSource;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::*};
use std::sync::Arc;
use std::time::{Duration, Instant};
use windows::core::HSTRING;
use windows::Win32::Foundation::INVALID_HANDLE_VALUE;
use windows::Win32::System::Memory::{
    CreateFileMappingW, MapViewOfFile, OpenFileMappingW, FILE_MAP_ALL_ACCESS, PAGE_READWRITE,
};

/// The stand-in's `bridge_hook::RING_SECTION`.
pub const RING_SECTION: &str = r"Global\HardMuteWineBridgeRing";
/// The stand-in's `audio::PHASE_SECTION`: [request, ack, feeding, -].
pub const PHASE_SECTION: &str = r"Global\HardMuteWineAudioPhase";
/// The signal (the stand-in's `SIGNAL_HZ` / `SIGNAL_AMPLITUDE`): left, right.
pub const SIGNAL_HZ: [f64; 2] = [1000.0, 1500.0];
pub const SIGNAL_AMPLITUDE: f64 = 0.5;
const RATE: u32 = 48_000;
/// One capture packet: 10 ms, WASAPI's shared-mode period. Whole periods of both tones (10
/// and 15 cycles), so a packet the feed drops while it believes no stream reads the ring (a
/// late Wine timer looks like that) leaves the tone's phase continuous; the stand-in's fit
/// then checks the samples themselves, and the drops are reported here.
const PACKET_FRAMES: usize = 480;
/// The stand-in's last request: mute, then release the bridge.
const DONE: u32 = 4;

/// (passed, check detail) for the caller to report.
pub type Results = Vec<(bool, String)>;

fn open_device(limit: Duration) -> Result<ControlDevice, String> {
    let start = Instant::now();
    loop {
        match ControlDevice::open() {
            Ok(d) => return Ok(d),
            Err(e) if start.elapsed() > limit => return Err(e.to_string()),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Maps `bytes` of the section `name` (opening it, or creating it with `create`).
fn map_section(name: &str, bytes: usize, create: bool) -> Result<*mut u8, String> {
    // SAFETY: named pagefile-backed sections; the handle and the view are kept for the
    // process's lifetime (the probe exits after the pnp step).
    unsafe {
        let section = if create {
            CreateFileMappingW(
                INVALID_HANDLE_VALUE,
                None,
                PAGE_READWRITE,
                0,
                bytes as u32,
                &HSTRING::from(name),
            )
        } else {
            OpenFileMappingW(FILE_MAP_ALL_ACCESS.0, false, &HSTRING::from(name))
        }
        .map_err(|e| format!("{name}: {e}"))?;
        let view = MapViewOfFile(section, FILE_MAP_ALL_ACCESS, 0, 0, bytes);
        if view.Value.is_null() {
            return Err(format!(
                "MapViewOfFile({name}): {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(view.Value.cast())
    }
}

/// The signal's sample `i` of channel `c`.
pub fn signal(i: u64, c: usize) -> f32 {
    let t = i as f64 / f64::from(RATE);
    (SIGNAL_AMPLITUDE * (2.0 * std::f64::consts::PI * SIGNAL_HZ[c] * t).sin()) as f32
}

/// Runs until the stand-in's last request (or `stop`).
pub fn bridge(stop: &AtomicBool) -> Results {
    let mut out = Results::new();
    let device = match open_device(Duration::from_secs(30)) {
        Ok(d) => Arc::new(d),
        Err(e) => {
            out.push((false, format!("audio bridge: control device: {e}")));
            return out;
        }
    };
    let registration = match BridgeRegistration::register(device.clone()) {
        Ok(r) => r,
        Err(e) => {
            out.push((false, format!("audio bridge: REGISTER_BRIDGE: {e}")));
            return out;
        }
    };
    out.push((
        true,
        "audio bridge: registered with the daemon's BridgeRegistration (pending)".into(),
    ));
    let g = ring_geometry(RING_FRAMES, RING_CHANNELS);
    // The hook created the section while the driver handled REGISTER_BRIDGE (before the
    // request returned pending).
    let ring_view = match map_section(RING_SECTION, g.bytes, false) {
        Ok(v) => v,
        Err(e) => {
            out.push((
                false,
                format!("audio bridge: the hook's ring section is missing: {e}"),
            ));
            return out;
        }
    };
    let header_bytes = std::mem::size_of::<RingHeader>();
    // SAFETY: the section is g.bytes long (the REGISTER_BRIDGE buffer's length), page
    // aligned; the header and slots are atomics, valid for any bits; mapped for our lifetime.
    let (header, slots) = unsafe {
        (
            &*ring_view.cast::<RingHeader>(),
            std::slice::from_raw_parts(
                ring_view.add(header_bytes).cast::<AtomicU32>(),
                (g.bytes - header_bytes) / 4,
            ),
        )
    };
    if !out_push(
        &mut out,
        SharedRing::attach(header, slots).is_ok(),
        "audio bridge: the ring section holds the header BridgeRegistration initialised (the hook copied Wine's buffer)",
    ) {
        return out;
    }
    let words = match map_section(PHASE_SECTION, 4096, true) {
        // SAFETY: 4096 zero-initialised bytes mapped for our lifetime; atomics.
        Ok(v) => unsafe { &*v.cast::<[AtomicU32; 4]>() },
        Err(e) => {
            out.push((false, format!("audio bridge: phase section: {e}")));
            return out;
        }
    };

    let input = MixFormat {
        rate: RATE,
        channels: 2,
        kind: SampleKind::F32,
    };
    let mut feed = CaptureFeed::new(input, RATE);
    let stats = FeedStats::default();
    let mut packet = vec![0f32; PACKET_FRAMES * 2];
    let mut device_rate = 0u32;
    let mut sent: u64 = 0;
    let mut acked = 0u32;
    let mut requests = Vec::new();
    let start = Instant::now();
    let mut last_poll = start;
    words[2].store(1, SeqCst);
    while !stop.load(SeqCst) {
        // Packets as a 48 kHz capture device delivers them.
        let due = (start.elapsed().as_secs_f64() * f64::from(RATE)) as u64;
        while sent + PACKET_FRAMES as u64 <= due {
            for (i, frame) in packet.chunks_exact_mut(2).enumerate() {
                for (c, s) in frame.iter_mut().enumerate() {
                    *s = signal(sent + i as u64, c);
                }
            }
            if let Ok(ring) = SharedRing::attach(header, slots) {
                let mut writer = ring.writer();
                let clock = HostClock {
                    now: start.elapsed().as_nanos() as u64 + 1,
                    ticks_per_second: 1_000_000_000,
                };
                feed.on_packet(
                    Samples::F32(&packet),
                    &mut writer,
                    clock,
                    device_rate,
                    &stats,
                );
            }
            sent += PACKET_FRAMES as u64;
        }
        // The driver's stream rate, polled off the realtime step (as the daemon does).
        if last_poll.elapsed() >= Duration::from_millis(50) {
            last_poll = Instant::now();
            if let Ok(s) = device.get_state() {
                device_rate = s.stream_rate;
            }
        }
        let request = words[0].load(SeqCst);
        if request != acked && request != 0 {
            let mute = request % 2 == 0;
            let t = Instant::now();
            let r = device.set_mute(mute, ChangeSource::Cli);
            requests.push((
                r.is_ok(),
                format!(
                    "audio bridge: request {request}: SET_MUTE({}) by the owner: {} in {:?}",
                    if mute { "muted" } else { "live" },
                    match &r {
                        Ok(g) => format!("generation {g}"),
                        Err(e) => e.to_string(),
                    },
                    t.elapsed()
                ),
            ));
            acked = request;
            if r.is_ok() {
                words[1].store(request, SeqCst);
            }
            if request == DONE {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    words[2].store(0, SeqCst);
    let state = device.get_state().ok();
    out.extend(requests);
    out.push((
        acked == DONE,
        format!(
            "audio bridge: fed {} packets ({} frames in, {} out, {} dropped while the ring looked unread, {} overruns) through CaptureFeed::on_packet; the stand-in {}",
            stats.packets.load(Relaxed),
            stats.frames_in.load(Relaxed),
            stats.frames_out.load(Relaxed),
            stats.dropped_idle.load(Relaxed),
            stats.overruns.load(Relaxed),
            if acked == DONE {
                "finished its phases".to_string()
            } else {
                format!("stopped at request {acked}")
            }
        ),
    ));
    if let Some(s) = state {
        println!(
            "audio bridge: driver counters: {} frames delivered, {} zeroed, {} underruns, bridge heartbeat {}",
            s.frames_delivered, s.frames_zeroed, s.underruns, s.bridge_heartbeat
        );
    }
    drop(registration);
    out
}

fn out_push(out: &mut Results, ok: bool, detail: &str) -> bool {
    out.push((ok, detail.to_owned()));
    ok
}
