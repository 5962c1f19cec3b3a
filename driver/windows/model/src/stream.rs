//! One WaveRT capture stream: format, KS state machine, cyclic-buffer geometry, position,
//! packet notifications, and the 1 ms timer tick that fills the app-visible buffer from the
//! bridge ring through the hard-mute gate.
//!
//! Cadence, position and packet timing depend only on QPC time and the format, never on
//! whether or what the bridge delivered (invariant 3): the tick always writes exactly the
//! frames that are due, taking them from the ring when it has them and zeros otherwise.
//!
//! Bridge heartbeat: the bridge (WASAPI, in the user's daemon) cannot write the driver's
//! control block, which lives in kernel memory. So the tick counts on its behalf: every tick
//! that took at least one sample from the bridge ring bumps `bridge_heartbeat`, which
//! GET_STATE reports. While an app records and the bridge feeds, it rises about once per
//! millisecond; when the bridge dies (ring detached) or stops writing (its backlog, at most the
//! ring, drains), it stops, and the tick delivers zeros. The daemon's `BridgeWatch` turns a
//! flat heartbeat into "stale".

use crate::clock::SegmentClock;
use crate::format::{SampleFormat, StreamFormat};
use crate::ks::KsAudioPosition;
use crate::status::*;
use hardmute_core::control::ControlBlock;
use hardmute_core::deliver::deliver_from_ring;
use hardmute_core::gate::{fade_frames_for, Gate, DEFAULT_FADE_MS};
use hardmute_core::ring::SampleRing;
use hardmute_core::{convert::convert, Sample, I24};

/// `KSSTATE`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum KsState {
    Stop = 0,
    Acquire = 1,
    Pause = 2,
    Run = 3,
}

impl KsState {
    pub const fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            0 => Some(KsState::Stop),
            1 => Some(KsState::Acquire),
            2 => Some(KsState::Pause),
            3 => Some(KsState::Run),
            _ => None,
        }
    }
}

/// What the kernel glue must do with the stream's timer after a state change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerAction {
    None,
    /// Start the periodic 1 ms high-resolution timer (entering RUN).
    Start,
    /// Cancel the timer and wait for a running callback to finish (leaving RUN) *before*
    /// calling [`CaptureStream::set_state`].
    Stop,
}

/// Size of the cyclic buffer PortCls maps for the app/engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferGeometry {
    pub bytes: u32,
    pub frames: u32,
    /// Packet notifications per buffer pass (0 = polling mode, no events).
    pub notifications: u32,
}

/// Shortest buffer we hand out: 2 periods of the 1 ms timer.
pub const MIN_BUFFER_MS: u32 = 2;
/// Longest buffer: 2 s (WaveRT clients ask for 10-100 ms; anything larger is a bug or abuse).
pub const MAX_BUFFER_MS: u32 = 2_000;
pub const MAX_NOTIFICATIONS: u32 = 8;
/// Frames per gate/convert chunk inside one tick: bounds the stack scratch (< 1.5 KiB).
pub const CHUNK_FRAMES: usize = 96;
/// Channels the bridge ring may carry (interleaved f32 at the stream rate).
pub const MAX_RING_CHANNELS: usize = 2;

/// Frames and bytes of the buffer for a request (`AllocateAudioBuffer[WithNotification]`).
/// The request is clamped into [MIN_BUFFER_MS, MAX_BUFFER_MS], rounded down to whole frames
/// and, with notifications, to whole packets (every packet the same size).
pub fn buffer_geometry(
    format: &StreamFormat,
    requested_bytes: u32,
    notifications: u32,
) -> Result<BufferGeometry, NtStatus> {
    if notifications > MAX_NOTIFICATIONS {
        return Err(STATUS_INVALID_PARAMETER);
    }
    let align = format.block_align();
    let min_frames = format.rate / 1000 * MIN_BUFFER_MS;
    let max_frames = format.rate / 1000 * MAX_BUFFER_MS;
    let mut frames = (requested_bytes / align).clamp(min_frames, max_frames);
    if notifications > 0 {
        frames -= frames % notifications;
    }
    Ok(BufferGeometry {
        bytes: frames * align,
        frames,
        notifications,
    })
}

/// What one timer tick did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Frames written into the cyclic buffer by this tick.
    pub frames: u64,
    /// Whether a packet boundary was crossed: the glue signals the notification event.
    pub signal: bool,
}

/// Counts the samples delivery takes from a ring (for the bridge heartbeat).
struct Counted<'a, R> {
    ring: &'a mut R,
    popped: usize,
}

impl<R: SampleRing> SampleRing for Counted<'_, R> {
    fn pop_into<S: Sample>(&mut self, out: &mut [S]) -> usize {
        let n = self.ring.pop_into(out);
        self.popped += n;
        n
    }
    fn discard_all(&mut self) {
        self.ring.discard_all();
    }
    fn len(&self) -> usize {
        self.ring.len()
    }
}

/// The ring used while no bridge is registered: always empty, so delivery yields zeros.
pub struct NoBridge;
impl SampleRing for NoBridge {
    fn pop_into<S: Sample>(&mut self, _out: &mut [S]) -> usize {
        0
    }
    fn discard_all(&mut self) {}
    fn len(&self) -> usize {
        0
    }
}

pub struct CaptureStream {
    format: StreamFormat,
    state: KsState,
    buffer: Option<BufferGeometry>,
    clock: SegmentClock,
    qpc_freq: u64,
    /// Frames written into the cyclic buffer since the last STOP (the reported position).
    frames_written: u64,
    /// Packets completed as of the last tick.
    packets_done: u64,
    /// Number of ACQUIRE -> STOP transitions: a packet reader from before a STOP starts over.
    stops: u32,
    gate: Gate,
}

impl CaptureStream {
    pub fn new(format: StreamFormat, qpc_freq: u64) -> Self {
        CaptureStream {
            format,
            state: KsState::Stop,
            buffer: None,
            clock: SegmentClock::new(qpc_freq, format.rate),
            qpc_freq,
            frames_written: 0,
            packets_done: 0,
            stops: 0,
            gate: Gate::new(fade_frames_for(format.rate, DEFAULT_FADE_MS)),
        }
    }

    pub fn format(&self) -> StreamFormat {
        self.format
    }
    pub fn state(&self) -> KsState {
        self.state
    }
    pub fn buffer(&self) -> Option<BufferGeometry> {
        self.buffer
    }

    /// `IMiniportWaveRTStream::SetFormat`: only while not streaming (STOP/ACQUIRE), and
    /// only to a format whose block size fits the allocated buffer geometry.
    pub fn set_format(&mut self, format: StreamFormat) -> Result<(), NtStatus> {
        if self.state > KsState::Acquire {
            return Err(STATUS_INVALID_DEVICE_STATE);
        }
        if !format.is_supported() {
            return Err(STATUS_NO_MATCH);
        }
        if let Some(geometry) = self.buffer {
            self.buffer = Some(BufferGeometry {
                frames: geometry.bytes / format.block_align(),
                ..geometry
            });
        }
        self.format = format;
        self.clock = SegmentClock::new(self.qpc_freq, format.rate);
        self.gate = Gate::new(fade_frames_for(format.rate, DEFAULT_FADE_MS));
        Ok(())
    }

    /// `AllocateAudioBuffer[WithNotification]`: computes the geometry; the glue allocates
    /// the pages. Only in STOP and only once (PortCls frees before re-allocating).
    pub fn allocate_buffer(
        &mut self,
        requested_bytes: u32,
        notifications: u32,
    ) -> Result<BufferGeometry, NtStatus> {
        if self.state != KsState::Stop || self.buffer.is_some() {
            return Err(STATUS_INVALID_DEVICE_STATE);
        }
        let geometry = buffer_geometry(&self.format, requested_bytes, notifications)?;
        self.buffer = Some(geometry);
        Ok(geometry)
    }

    /// `FreeAudioBuffer`: the glue frees the pages afterwards.
    pub fn free_buffer(&mut self) {
        self.buffer = None;
    }

    /// `IMiniportWaveRTStream::SetState`. KS steps one state at a time; a jump is refused.
    /// Leaving RUN: the glue must have stopped the timer already (it does so on
    /// [`TimerAction::Stop`] returned by [`timer_action_for`](Self::timer_action_for)).
    pub fn set_state(&mut self, new: KsState, now_qpc: u64) -> Result<TimerAction, NtStatus> {
        let (old_rank, new_rank) = (self.state as u32, new as u32);
        if old_rank.abs_diff(new_rank) > 1 {
            return Err(STATUS_INVALID_DEVICE_STATE);
        }
        let action = match (self.state, new) {
            (KsState::Pause, KsState::Run) => {
                if self.buffer.is_none() {
                    return Err(STATUS_INVALID_DEVICE_STATE);
                }
                self.clock.start_segment(now_qpc, self.frames_written);
                TimerAction::Start
            }
            (KsState::Run, KsState::Pause) => TimerAction::Stop,
            (KsState::Acquire, KsState::Stop) => {
                // KS: STOP resets the position; the next RUN starts a new stream of frames.
                self.frames_written = 0;
                self.packets_done = 0;
                self.stops = self.stops.wrapping_add(1);
                TimerAction::None
            }
            _ => TimerAction::None,
        };
        self.state = new;
        Ok(action)
    }

    /// What the glue must do with the timer *before* calling `set_state(new)`.
    pub fn timer_action_for(&self, new: KsState) -> TimerAction {
        match (self.state, new) {
            (KsState::Run, KsState::Pause) => TimerAction::Stop,
            _ => TimerAction::None,
        }
    }

    /// `GetPosition`: the byte offset up to which the buffer holds delivered frames (for
    /// capture, play and write offsets coincide). It moves only in ticks: reporting a
    /// position ahead of what is written would let the engine read stale bytes.
    pub fn position(&self) -> KsAudioPosition {
        let Some(geometry) = self.buffer.filter(|g| g.frames > 0) else {
            return KsAudioPosition::default();
        };
        let offset = (self.frames_written % u64::from(geometry.frames))
            * u64::from(self.format.block_align());
        KsAudioPosition {
            play_offset: offset,
            write_offset: offset,
        }
    }

    /// Total frames delivered since the last STOP.
    pub fn frames_written(&self) -> u64 {
        self.frames_written
    }

    /// Packets completed since the last STOP (0 in polling mode).
    pub fn packets_completed(&self) -> u64 {
        self.packets_done
    }

    /// Frames per packet and packets per buffer, with notifications (packet mode) only.
    pub fn packet_geometry(&self) -> Option<(u32, u32)> {
        let geometry = self
            .buffer
            .filter(|g| g.notifications > 0 && g.frames > 0)?;
        Some((
            geometry.frames / geometry.notifications,
            geometry.notifications,
        ))
    }

    /// The stream's QPC clock (segment start and base as of the last RUN).
    pub fn clock(&self) -> SegmentClock {
        self.clock
    }

    /// ACQUIRE -> STOP transitions so far.
    pub fn stops(&self) -> u32 {
        self.stops
    }

    /// Packets completed since the last STOP, and the QPC instant the last one completed
    /// (for `GetReadPacket`-style reporting; None before the first packet).
    pub fn last_packet(&self) -> Option<(u64, u64)> {
        let geometry = self.buffer?;
        if self.packets_done == 0 || geometry.notifications == 0 {
            return None;
        }
        let packet_frames = u64::from(geometry.frames / geometry.notifications);
        let end_frame = self.packets_done * packet_frames;
        Some((self.packets_done - 1, self.clock.qpc_of_frame(end_frame)))
    }

    /// The 1 ms timer callback (DISPATCH_LEVEL in the kernel): writes every frame due at
    /// `now_qpc` into `buffer` (the mapped cyclic buffer), taking samples from `ring`
    /// (interleaved f32, `ring_channels` wide) through the hard-mute gate.
    ///
    /// No allocation (tested with a counting allocator), no lock: bounded loops over fixed
    /// stack scratch. Slice indices come from the geometry, so bounds checks cannot fire.
    pub fn tick<R: SampleRing>(
        &mut self,
        now_qpc: u64,
        ctl: &ControlBlock,
        ring: &mut R,
        ring_channels: usize,
        buffer: &mut [u8],
    ) -> TickReport {
        let Some(geometry) = self.buffer else {
            return TickReport::default();
        };
        if self.state != KsState::Run
            || geometry.frames == 0
            || !(1..=MAX_RING_CHANNELS).contains(&ring_channels)
        {
            return TickReport::default();
        }
        let align = self.format.block_align() as usize;
        let Some(buffer) = buffer.get_mut(..geometry.frames as usize * align) else {
            return TickReport::default();
        };
        let due = self.clock.frames_at(now_qpc);
        let new_frames = due.saturating_sub(self.frames_written);
        if new_frames == 0 {
            return TickReport::default();
        }
        // After a stall longer than the buffer, only the last buffer's worth is visible:
        // skip the rest (the position still advances by every due frame).
        let buffer_frames = u64::from(geometry.frames);
        let mut write_from = self.frames_written + new_frames.saturating_sub(buffer_frames);
        let mut ring = Counted { ring, popped: 0 };
        while write_from < due {
            let pos = (write_from % buffer_frames) as usize;
            let n = ((due - write_from) as usize)
                .min(CHUNK_FRAMES)
                .min(geometry.frames as usize - pos);
            let out = &mut buffer[pos * align..(pos + n) * align];
            self.fill_chunk(ctl, &mut ring, ring_channels, n, out);
            write_from += n as u64;
        }
        if ring.popped > 0 {
            ctl.heartbeat();
        }
        self.frames_written = due;
        let mut signal = false;
        if let Some(packet_frames) = geometry.frames.checked_div(geometry.notifications) {
            let packet_frames = u64::from(packet_frames).max(1);
            let packets = due / packet_frames;
            signal = packets > self.packets_done;
            self.packets_done = packets;
        }
        TickReport {
            frames: new_frames,
            signal,
        }
    }

    fn fill_chunk<R: SampleRing>(
        &mut self,
        ctl: &ControlBlock,
        ring: &mut R,
        ring_ch: usize,
        frames: usize,
        out: &mut [u8],
    ) {
        let mut gated = [0f32; CHUNK_FRAMES * MAX_RING_CHANNELS];
        let gated = &mut gated[..frames * ring_ch];
        deliver_from_ring(ctl, &mut self.gate, ring, gated, ring_ch);
        let out_ch = usize::from(self.format.channels);
        match self.format.sample {
            SampleFormat::Pcm16 => {
                encode::<i16, 2>(gated, ring_ch, out, out_ch, |s| s.to_le_bytes())
            }
            SampleFormat::Pcm24In32 => {
                // WAVEFORMATEXTENSIBLE 24-in-32 is MSB-justified: the 24 valid bits are the
                // top of the container and the low byte is zero.
                encode::<I24, 4>(gated, ring_ch, out, out_ch, |s| {
                    ((s.0 as u32) << 8).to_le_bytes()
                })
            }
            SampleFormat::Pcm32 => {
                encode::<i32, 4>(gated, ring_ch, out, out_ch, |s| s.to_le_bytes())
            }
            SampleFormat::Float32 => {
                encode::<f32, 4>(gated, ring_ch, out, out_ch, |s| s.to_le_bytes())
            }
        }
    }
}

/// Converts gated f32 frames to the stream's sample type and channel count, little-endian.
fn encode<S: Sample, const N: usize>(
    src: &[f32],
    src_ch: usize,
    out: &mut [u8],
    out_ch: usize,
    to_bytes: impl Fn(S) -> [u8; N],
) {
    let mut staged = [S::ZERO; CHUNK_FRAMES * MAX_RING_CHANNELS];
    let frames = src.len() / src_ch;
    let staged = &mut staged[..frames * out_ch];
    convert(src, src_ch, staged, out_ch);
    for (chunk, sample) in out.chunks_exact_mut(N).zip(staged.iter()) {
        chunk.copy_from_slice(&to_bytes(*sample));
    }
}
