//! Packet-mode capture: `IMiniportWaveRTInputStream::GetReadPacket`.
//!
//! With `AllocateBufferWithNotification(N)` the cyclic buffer is N equal packets. The timer
//! tick completes packets as QPC time passes ([`CaptureStream::tick`]); the audio engine asks
//! for them one at a time, in order:
//! - `PacketNumber`: the next packet it has not read, counted from the last STOP;
//! - `PerformanceCounterValue`: the QPC instant of the packet's first sample, from the same
//!   clock that places the frames (so it is exact, and moves by exactly one packet per packet);
//! - `MoreData`: another completed packet is waiting right now;
//! - `STATUS_DEVICE_NOT_READY` while no completed packet is unread (also before the first).
//!
//! Overflow (the engine fell behind): the slot the tick is filling is the slot of the packet
//! N before it, so at most N - 1 completed packets are intact. Older ones are skipped, the
//! oldest intact one is returned, and the skip is counted; the packet counter keeps following
//! time, as the WDK asks ("drop or overwrite the oldest data first").
//!
//! Concurrency: the timer callback owns the [`CaptureStream`] while running, and
//! `GetReadPacket` may come at any time on another CPU, so it never touches the stream: the
//! glue [`publish`](PacketBoard::publish)es what it needs into a [`PacketBoard`] (atomics
//! only, no lock) after every tick and state change, and the engine's cursor is a separate
//! [`ReadCursor`] that only `GetReadPacket` uses.

use crate::clock::SegmentClock;
use crate::status::*;
use crate::stream::CaptureStream;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};

/// What `GetReadPacket` returns on success.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadPacket {
    pub packet_number: u32,
    /// Reserved: always 0.
    pub flags: u32,
    pub performance_counter: u64,
    pub more_data: bool,
}

/// The stream facts `GetReadPacket` needs, published without a lock.
#[derive(Debug, Default)]
pub struct PacketBoard {
    stops: AtomicU32,
    packet_frames: AtomicU32,
    notifications: AtomicU32,
    rate: AtomicU32,
    qpc_freq: AtomicU64,
    segment_start: AtomicU64,
    segment_base: AtomicU64,
    completed: AtomicU64,
}

/// One consistent-enough reading of the board (see [`PacketBoard::publish`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Facts {
    stops: u32,
    packet_frames: u32,
    notifications: u32,
    clock: SegmentClock,
    completed: u64,
}

impl PacketBoard {
    pub const fn new() -> Self {
        PacketBoard {
            stops: AtomicU32::new(0),
            packet_frames: AtomicU32::new(0),
            notifications: AtomicU32::new(0),
            rate: AtomicU32::new(0),
            qpc_freq: AtomicU64::new(0),
            segment_start: AtomicU64::new(0),
            segment_base: AtomicU64::new(0),
            completed: AtomicU64::new(0),
        }
    }

    /// Copies the stream's packet facts (by whoever holds the stream: the timer callback after
    /// a tick, the serialised stream calls after a state or buffer change). Realtime-safe:
    /// plain atomic stores. The completed count goes last with Release, so a reader that sees
    /// it also sees the geometry and clock it belongs to (they change only while the timer
    /// is stopped).
    pub fn publish(&self, stream: &CaptureStream) {
        let (packet_frames, notifications) = stream.packet_geometry().unwrap_or((0, 0));
        let clock = stream.clock();
        let (start, base) = clock.segment();
        self.packet_frames.store(packet_frames, Relaxed);
        self.notifications.store(notifications, Relaxed);
        self.rate.store(clock.rate(), Relaxed);
        self.qpc_freq.store(clock.qpc_freq(), Relaxed);
        self.segment_start.store(start, Relaxed);
        self.segment_base.store(base, Relaxed);
        self.stops.store(stream.stops(), Relaxed);
        self.completed.store(stream.packets_completed(), Release);
    }

    fn facts(&self) -> Facts {
        let completed = self.completed.load(Acquire);
        Facts {
            stops: self.stops.load(Relaxed),
            packet_frames: self.packet_frames.load(Relaxed),
            notifications: self.notifications.load(Relaxed),
            clock: SegmentClock::with_segment(
                self.qpc_freq.load(Relaxed),
                self.rate.load(Relaxed),
                self.segment_start.load(Relaxed),
                self.segment_base.load(Relaxed),
            ),
            completed,
        }
    }
}

/// The audio engine's position in the packet sequence (only `GetReadPacket` touches it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadCursor {
    stops: u32,
    next: u64,
    skipped: u64,
}

impl ReadCursor {
    pub const fn new() -> Self {
        ReadCursor {
            stops: 0,
            next: 0,
            skipped: 0,
        }
    }

    /// Packets the engine never got because it fell more than N - 1 packets behind.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// `IMiniportWaveRTInputStream::GetReadPacket`.
    pub fn read(&mut self, board: &PacketBoard) -> Result<ReadPacket, NtStatus> {
        let facts = board.facts();
        if facts.notifications == 0 || facts.packet_frames == 0 {
            // No notification buffer: packet mode was never set up for this stream.
            return Err(STATUS_INVALID_DEVICE_STATE);
        }
        if facts.stops != self.stops {
            // KS STOP resets the packet count; start over with the new sequence.
            *self = ReadCursor {
                stops: facts.stops,
                ..ReadCursor::new()
            };
        }
        let intact = u64::from(facts.notifications.saturating_sub(1).max(1));
        let oldest_intact = facts.completed.saturating_sub(intact);
        if self.next < oldest_intact {
            self.skipped += oldest_intact - self.next;
            self.next = oldest_intact;
        }
        if self.next >= facts.completed {
            return Err(STATUS_DEVICE_NOT_READY);
        }
        let packet = self.next;
        self.next += 1;
        let first_frame = packet * u64::from(facts.packet_frames);
        Ok(ReadPacket {
            // The DDI's ULONG: wraps after 2^32 packets (> 248 days of 5 ms packets).
            packet_number: packet as u32,
            flags: 0,
            performance_counter: facts.clock.qpc_of_frame(first_frame),
            more_data: self.next < facts.completed,
        })
    }
}
