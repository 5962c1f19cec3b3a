//! Audio through the ring: a known signal written by the bridge process (the probe, with the
//! daemon's ring-writer code) into the ring section ([`crate::bridge_hook`]) must appear in
//! the driver's cyclic buffer while live, and never while muted.
//!
//! Runs inside one capture stream (48 kHz stereo) in RUN, driving the mute through the probe
//! (the bridge's owner): the stand-in writes a request number into the named section
//! [`PHASE_SECTION`], the probe sends SET_MUTE with the daemon's client, waits for its
//! completion (the driver completes a mute only once its audio cycle acknowledged it) and
//! echoes the number back. Phases:
//! 1. muted (a fresh driver): 300 ms of exact zeros;
//! 2. unmuted: after 100 ms, 500 ms read; every 10 ms chunk between underrun gaps is the
//!    signal (per channel, a least-squares fit of the tone: amplitude within 10 % and at least
//!    90 % of the energy; left 1000 Hz, right 1500 Hz, amplitude 0.5 — channels swapped or
//!    mixed would fail), at least 100 ms of it ([`signal`]);
//! 3. muted: every byte written after the acknowledgement is an exact zero for 500 ms
//!    (docs/design.md's mute reaction: the first buffer after the acknowledgement is all zeros);
//! 4. unmuted again: the signal as in 2;
//! 5. muted again, and the probe releases the bridge.
//!
//! Frames are read behind the driver's write position (GetPosition), the way the audio engine
//! reads a WaveRT buffer.

use crate::drive::check;
use crate::win32::{self, qpc, Sleep};
use core::ptr::null_mut;
use core::sync::atomic::{AtomicU32, Ordering::*};
use hardmute_windows_model::format::{SampleFormat, StreamFormat};

use crate::ddk::*;

/// The request/acknowledge section (the probe's `PHASE_SECTION` is the same name).
pub const PHASE_SECTION: &[u8] = b"Global\\HardMuteWineAudioPhase\0";
/// Words of the phase section.
const REQUEST: usize = 0;
const ACK: usize = 1;
/// Set to 1 by the probe while its feeder thread writes the ring.
const FEEDING: usize = 2;
/// Requests: odd = unmute, even = mute; [`DONE`] = mute and release the bridge.
const UNMUTE_1: u32 = 1;
const MUTE: u32 = 2;
const UNMUTE_2: u32 = 3;
const DONE: u32 = 4;

/// The probe's signal (tests/wine-kernel/probe: `SIGNAL_HZ`, `SIGNAL_AMPLITUDE`).
const SIGNAL_HZ: [f64; 2] = [1000.0, 1500.0];
const SIGNAL_AMPLITUDE: f64 = 0.5;
/// 100 ms at 48 kHz.
const WINDOW: usize = 4800;
const RATE: u32 = 48_000;
/// Frames kept per phase (600 ms).
const CAPTURE_FRAMES: usize = 28_800;

type GetPosition = unsafe extern "C" fn(*mut IMiniportWaveRTStream, PKSAUDIO_POSITION) -> NTSTATUS;

/// Whether `f` is the format this test runs at.
pub fn wanted(f: &StreamFormat) -> bool {
    f.rate == RATE && f.channels == 2
}

struct Reader {
    stream: *mut IMiniportWaveRTStream,
    get_position: GetPosition,
    buffer: *const u8,
    len: usize,
    sample: SampleFormat,
    /// Byte offset read up to.
    last: usize,
    position_errors: u32,
}

/// What one phase read.
struct Capture<'a> {
    frames: &'a mut [f32],
    n: usize,
    nonzero_bytes: usize,
    bytes: usize,
}

impl Reader {
    fn position(&mut self) -> usize {
        let mut pos = KSAUDIO_POSITION {
            PlayOffset: 0,
            WriteOffset: 0,
        };
        // SAFETY: a live stream in RUN; serialised with the other stream calls (this thread).
        let s = unsafe { (self.get_position)(self.stream, &mut pos) };
        if s != 0 || pos.WriteOffset as usize >= self.len {
            self.position_errors += 1;
            return self.last;
        }
        pos.WriteOffset as usize
    }

    /// Forgets what was written so far.
    fn skip(&mut self) {
        self.last = self.position();
    }

    /// Reads what the driver wrote since the last call, for `ms` milliseconds.
    fn collect(&mut self, ms: i64, cap: &mut Capture<'_>) {
        cap.n = 0;
        cap.nonzero_bytes = 0;
        cap.bytes = 0;
        let (start, freq) = qpc();
        let frame_bytes = 2 * self.sample.bytes();
        loop {
            // SAFETY: plain sleep.
            unsafe { Sleep(2) };
            let w = self.position();
            while self.last != w {
                // SAFETY: `last` < len, a whole frame (block-aligned positions) inside the
                // mapped cyclic buffer, written by the driver's ticks.
                let frame =
                    unsafe { core::slice::from_raw_parts(self.buffer.add(self.last), frame_bytes) };
                cap.bytes += frame_bytes;
                cap.nonzero_bytes += frame.iter().filter(|&&b| b != 0).count();
                if cap.n < cap.frames.len() / 2 {
                    for c in 0..2 {
                        cap.frames[2 * cap.n + c] = decode(self.sample, frame, c);
                    }
                    cap.n += 1;
                }
                self.last = (self.last + frame_bytes) % self.len;
            }
            if (qpc().0 - start) * 1000 / freq >= ms {
                break;
            }
        }
    }
}

fn decode(sample: SampleFormat, frame: &[u8], channel: usize) -> f32 {
    let b = sample.bytes();
    let s = &frame[channel * b..(channel + 1) * b];
    match sample {
        SampleFormat::Pcm16 => f32::from(i16::from_le_bytes([s[0], s[1]])) / 32768.0,
        SampleFormat::Float32 => f32::from_le_bytes([s[0], s[1], s[2], s[3]]),
        _ => i32::from_le_bytes([s[0], s[1], s[2], s[3]]) as f32 / 2_147_483_648.0,
    }
}

/// cos and sin of a small angle (|x| < 1) by their series; core has no libm.
fn cos_sin(x: f64) -> (f64, f64) {
    let (mut c, mut s, mut term_c, mut term_s) = (1.0, x, 1.0, x);
    for k in 1..12 {
        let k = f64::from(k);
        term_c *= -x * x / ((2.0 * k - 1.0) * (2.0 * k));
        term_s *= -x * x / ((2.0 * k) * (2.0 * k + 1.0));
        c += term_c;
        s += term_s;
    }
    (c, s)
}

/// Least-squares fit of `a cos + b sin` at `hz` to `n` samples of channel `channel` from frame
/// `from` (interleaved stereo): the tone's amplitude and the share of the samples' energy it
/// explains. Exact for a pure tone of any length (no window, no leakage).
fn fit(x: &[f32], from: usize, n: usize, channel: usize, hz: f64) -> (f64, f64) {
    let w = 2.0 * core::f64::consts::PI * hz / f64::from(RATE);
    let (cw, sw) = cos_sin(w);
    let (mut c, mut s) = (1.0f64, 0.0f64);
    let (mut scc, mut sss, mut scs, mut sxc, mut sxs, mut sxx) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    for i in 0..n {
        let v = f64::from(x[2 * (from + i) + channel]);
        scc += c * c;
        sss += s * s;
        scs += c * s;
        sxc += v * c;
        sxs += v * s;
        sxx += v * v;
        (c, s) = (c * cw - s * sw, s * cw + c * sw);
    }
    let det = scc * sss - scs * scs;
    if det <= 0.0 || sxx <= 0.0 {
        return (0.0, 0.0);
    }
    let a = (sxc * sss - sxs * scs) / det;
    let b = (sxs * scc - sxc * scs) / det;
    (sqrt(a * a + b * b), (a * sxc + b * sxs) / sxx)
}

fn sqrt(v: f64) -> f64 {
    if v <= 0.0 {
        return 0.0;
    }
    let mut x = if v > 1.0 { v } else { 1.0 };
    for _ in 0..60 {
        x = 0.5 * (x + v / x);
    }
    x
}

/// Checks a live phase. Under Wine the driver's timer thread runs late now and then and takes
/// more than the ring holds: the driver pads the cycle with zeros (an underrun, never repeated
/// samples). So the capture is split into runs of frames that are not exact zeros, and the
/// 10 ms chunks of those runs must be the signal: per channel, the fitted tone's amplitude
/// within 10 % of 0.5 and at least 90 % of the chunk's energy explained by its own channel's
/// tone (a swapped, mixed, distorted or noisy signal fails). At most 10 % of the chunks may
/// miss: a chunk next to a stall can hold a phase jump where the bridge's feed trimmed its
/// fill (logged as `audio diag`). At least 100 ms of signal, and no sample beyond 0.55.
fn signal(label: &str, cap: &Capture<'_>) {
    const CHUNK: usize = 480;
    let silent = |i: usize| cap.frames[2 * i] == 0.0 && cap.frames[2 * i + 1] == 0.0;
    let (mut chunks, mut bad, mut covered) = (0usize, 0usize, 0usize);
    // No sample outside the tone's range: garbage (the 0x5a fill, a wrong conversion) fails.
    let peak = cap.frames[..2 * cap.n].iter().fold(0.0f32, |m, &v| {
        if v.abs() > m || v.is_nan() {
            v.abs()
        } else {
            m
        }
    });
    let (mut amp_min, mut amp_max, mut share_min) = (f64::MAX, 0.0f64, 1.0f64);
    let mut dev_max = 0i32;
    let mut i = 0;
    while i < cap.n {
        if silent(i) {
            i += 1;
            continue;
        }
        let run_start = i;
        while i < cap.n && !silent(i) {
            i += 1;
        }
        covered += i - run_start;
        let mut at = run_start;
        while at + CHUNK <= i {
            let mut chunk_ok = true;
            for (c, hz) in SIGNAL_HZ.iter().enumerate() {
                // The bridge's drift controller resamples by up to a few per cent while it
                // chases Wine's late timer: the best fit within +-3 % of the tone.
                let (mut amplitude, mut share, mut off) = (0.0, -1.0, 0i32);
                for k in -30..=30 {
                    let (a, sh) = fit(cap.frames, at, CHUNK, c, hz * (1.0 + f64::from(k) * 0.001));
                    if sh > share {
                        (amplitude, share, off) = (a, sh, k);
                    }
                }
                amp_min = amp_min.min(amplitude);
                amp_max = amp_max.max(amplitude);
                share_min = share_min.min(share);
                dev_max = dev_max.max(off.abs());
                if (amplitude - SIGNAL_AMPLITUDE).abs() > 0.1 * SIGNAL_AMPLITUDE || share < 0.9 {
                    if bad < 6 && chunk_ok {
                        say!(
                            "audio diag {label}: chunk at frame {at} (run {run_start}..{i}) channel {c}: amplitude {amplitude:.3}, share {:.1} %, best at {:+.1} %",
                            share * 100.0,
                            f64::from(off) * 0.1
                        );
                    }
                    chunk_ok = false;
                }
            }
            bad += usize::from(!chunk_ok);
            chunks += 1;
            at += CHUNK;
        }
    }
    check(
        chunks >= 10 && bad * 10 <= chunks && f64::from(peak) <= 1.1 * SIGNAL_AMPLITUDE,
        format_args!(
            "audio {label}: the bridge's signal in the cyclic buffer: peak {peak:.3} (want <= 0.55), {chunks} chunks of 10 ms fitted (want >= 10, at most 10 % off), tone amplitude {:.3}..{:.3} (want {SIGNAL_AMPLITUDE} +-10 %), at least {:.1} % of each chunk's energy in its channel's tone (L {} Hz, R {} Hz, best fit within {:.1} %; want >= 90 % within 3 %), {bad} chunks off; {} of {} frames carried audio (the rest underrun zeros: Wine's timer thread runs late)",
            if amp_min == f64::MAX { 0.0 } else { amp_min },
            amp_max,
            share_min * 100.0,
            SIGNAL_HZ[0],
            SIGNAL_HZ[1],
            f64::from(dev_max) * 0.1,
            covered,
            cap.n
        ),
    );
}

fn zeros(label: &str, cap: &Capture<'_>) {
    check(
        cap.bytes >= 4 * WINDOW * 2 && cap.nonzero_bytes == 0,
        format_args!(
            "audio {label}: exact zeros in the cyclic buffer: {} of {} bytes written non-zero",
            cap.nonzero_bytes, cap.bytes
        ),
    );
}

/// The phase section's words.
fn phase_words() -> Option<&'static [AtomicU32; 4]> {
    // SAFETY: create-or-open of a small pagefile-backed section, kept mapped for winedevice's
    // lifetime; AtomicU32 is valid for any bit pattern (zero-filled by the system).
    unsafe {
        let section = win32::CreateFileMappingA(
            win32::INVALID_HANDLE,
            null_mut(),
            win32::PAGE_READWRITE,
            0,
            4096,
            PHASE_SECTION.as_ptr(),
        );
        if section.is_null() {
            return None;
        }
        let view = win32::MapViewOfFile(section, win32::FILE_MAP_ALL_ACCESS, 0, 0, 4096);
        (!view.is_null()).then(|| &*view.cast::<[AtomicU32; 4]>())
    }
}

/// Asks the probe for `request`; true once it acknowledged (SET_MUTE completed).
fn ask(words: &[AtomicU32; 4], request: u32) -> bool {
    words[REQUEST].store(request, SeqCst);
    let (start, freq) = qpc();
    while words[ACK].load(SeqCst) != request {
        if (qpc().0 - start) > 10 * freq {
            return false;
        }
        // SAFETY: plain sleep.
        unsafe { Sleep(1) };
    }
    true
}

/// Runs the phases on a stream in RUN.
///
/// # Safety
/// `stream` is in RUN with `buffer` (`len` bytes) its cyclic buffer at `format`.
pub unsafe fn run(
    stream: *mut IMiniportWaveRTStream,
    get_position: GetPosition,
    buffer: *const u8,
    len: usize,
    format: StreamFormat,
) {
    let Some(words) = phase_words() else {
        check(
            false,
            format_args!("audio: the phase section could not be mapped"),
        );
        return;
    };
    // The probe registers its bridge right after installing the device; wait for the hook and
    // the feeder (at most 30 s).
    let (start, freq) = qpc();
    while (crate::bridge_hook::APPLIED.load(SeqCst) == 0 || words[FEEDING].load(SeqCst) != 1)
        && qpc().0 - start < 30 * freq
    {
        // SAFETY: plain sleep.
        unsafe { Sleep(10) };
    }
    let hooked = crate::bridge_hook::APPLIED.load(SeqCst);
    if !check(
        hooked > 0 && words[FEEDING].load(SeqCst) == 1,
        format_args!(
            "audio: the bridge registered through the hook ({hooked} REGISTER_BRIDGE mapped to the section) and the probe feeds the ring: {}",
            words[FEEDING].load(SeqCst) == 1
        ),
    ) {
        return;
    }
    // SAFETY: 600 ms of stereo f32 from the pool, freed below.
    let memory = unsafe {
        ExAllocatePoolWithTag(
            crate::ddk::extra::NON_PAGED_POOL_NX,
            (CAPTURE_FRAMES * 2 * 4) as SIZE_T,
            u32::from_le_bytes(*b"HmAu"),
        )
    }
    .cast::<f32>();
    if memory.is_null() {
        check(false, format_args!("audio: no memory for the capture"));
        return;
    }
    // SAFETY: the fresh allocation, zeroed; freed at the end of this function only.
    let frames = unsafe {
        core::ptr::write_bytes(memory, 0, CAPTURE_FRAMES * 2);
        core::slice::from_raw_parts_mut(memory, CAPTURE_FRAMES * 2)
    };
    let mut cap = Capture {
        frames,
        n: 0,
        nonzero_bytes: 0,
        bytes: 0,
    };
    let mut r = Reader {
        stream,
        get_position,
        buffer,
        len,
        sample: format.sample,
        last: 0,
        position_errors: 0,
    };
    say!("audio: phases at {} Hz, {:?}", format.rate, format.sample);

    r.skip();
    r.collect(300, &mut cap);
    zeros("muted (fresh driver, the bridge feeding)", &cap);

    let steps: [(u32, &str); 3] = [
        (UNMUTE_1, "live (unmuted by the owner)"),
        (MUTE, "muted after the acknowledgement"),
        (UNMUTE_2, "live again (unmuted after the mute)"),
    ];
    for (request, label) in steps {
        if !check(
            ask(words, request),
            format_args!(
                "audio: the probe's SET_MUTE for request {request} ({label}) acknowledged"
            ),
        ) {
            break;
        }
        if request == MUTE {
            // Everything written from here on came after the acknowledgement.
            r.skip();
            r.collect(500, &mut cap);
            zeros(label, &cap);
        } else {
            r.skip();
            r.collect(100, &mut cap);
            r.skip();
            r.collect(500, &mut cap);
            signal(label, &cap);
        }
    }
    check(
        ask(words, DONE),
        format_args!("audio: muted again and the bridge released by the probe"),
    );
    check(
        r.position_errors == 0,
        format_args!(
            "audio: GetPosition answered {} times out of range or failed",
            r.position_errors
        ),
    );
    // SAFETY: the allocation above; `cap` is not used after this.
    unsafe { ExFreePoolWithTag(memory.cast(), 0) };
}
