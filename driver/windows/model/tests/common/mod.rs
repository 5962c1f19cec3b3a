//! A simulated PortCls + audio engine around the miniport model: builds KS formats the way
//! a client would, opens a stream, allocates the "mapped" cyclic buffer, steps KS states,
//! fires the 1 ms timer over simulated QPC time and reads what an app would read.
#![allow(dead_code)]

use hardmute_core::control::ControlBlock;
use hardmute_core::ring::{RingHeader, SharedRing};
use hardmute_windows_model::format::{SampleFormat, StreamFormat};
use hardmute_windows_model::ks::*;
use hardmute_windows_model::miniport::WaveMiniport;
use hardmute_windows_model::stream::{CaptureStream, KsState, NoBridge, TimerAction};
use std::sync::atomic::AtomicU32;

/// A common QPC frequency (10 MHz on modern Windows).
pub const QPC_FREQ: u64 = 10_000_000;

pub fn extensible_bytes(f: &StreamFormat) -> Vec<u8> {
    let mut b = [0u8; KSDATAFORMAT_WFEXT_SIZE];
    f.write_extensible(&mut b);
    b.to_vec()
}

/// A bridge ring in ordinary memory standing in for the MDL-locked user buffer.
pub struct Bridge {
    pub header: Box<RingHeader>,
    pub slots: Vec<AtomicU32>,
}

impl Bridge {
    pub fn new(capacity_samples: u32, channels: u32) -> Self {
        Bridge {
            header: Box::new(RingHeader::new(capacity_samples, channels)),
            slots: (0..capacity_samples).map(|_| AtomicU32::new(0)).collect(),
        }
    }
    pub fn ring(&self) -> SharedRing<'_> {
        SharedRing::attach(&self.header, &self.slots).expect("valid ring")
    }
    pub fn push(&self, samples: &[f32]) -> usize {
        self.ring().writer().push(samples)
    }
}

pub struct SimPort {
    pub miniport: WaveMiniport,
    pub stream: CaptureStream,
    pub buffer: Vec<u8>,
    pub now: u64,
    /// Engine read cursor in frames (total).
    pub read_frames: u64,
}

impl SimPort {
    pub fn open(format: StreamFormat, requested_bytes: u32, notifications: u32) -> Self {
        let mut miniport = WaveMiniport::new();
        let mut stream = miniport
            .new_stream(0, true, &extensible_bytes(&format), QPC_FREQ)
            .expect("NewStream");
        let geometry = stream
            .allocate_buffer(requested_bytes, notifications)
            .expect("AllocateAudioBuffer");
        // Freshly allocated pages are not zero in the kernel; poison them so a test notices
        // any byte the tick failed to write.
        let buffer = vec![0xA5u8; geometry.bytes as usize];
        let mut port = SimPort {
            miniport,
            stream,
            buffer,
            now: 1_000_000_007,
            read_frames: 0,
        };
        for s in [KsState::Acquire, KsState::Pause, KsState::Run] {
            port.set_state(s);
        }
        port
    }

    pub fn set_state(&mut self, s: KsState) -> TimerAction {
        self.stream.set_state(s, self.now).expect("SetState")
    }

    /// Advances simulated time by `ticks` and fires the timer callback.
    pub fn tick_with(
        &mut self,
        ticks: u64,
        ctl: &ControlBlock,
        bridge: Option<&Bridge>,
        ring_channels: usize,
    ) -> u64 {
        self.now += ticks;
        match bridge {
            Some(b) => {
                let mut reader = b.ring().reader();
                self.stream
                    .tick(self.now, ctl, &mut reader, ring_channels, &mut self.buffer)
                    .frames
            }
            None => {
                self.stream
                    .tick(
                        self.now,
                        ctl,
                        &mut NoBridge,
                        ring_channels,
                        &mut self.buffer,
                    )
                    .frames
            }
        }
    }

    /// Reads every frame written since the last read, as the audio engine does from the
    /// cyclic buffer up to the reported position. Returns the raw bytes.
    pub fn engine_read(&mut self) -> Vec<u8> {
        let align = self.stream.format().block_align() as u64;
        let frames = self.stream.buffer().unwrap().frames as u64;
        let mut out = Vec::new();
        while self.read_frames < self.stream.frames_written() {
            let pos = (self.read_frames % frames * align) as usize;
            out.extend_from_slice(&self.buffer[pos..pos + align as usize]);
            self.read_frames += 1;
        }
        out
    }
}

/// Decodes the stream's bytes to f32 for assertions (and checks the encoding rules).
pub fn decode(sample: SampleFormat, bytes: &[u8]) -> Vec<f32> {
    match sample {
        SampleFormat::Pcm16 => bytes
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]) as f32 / 32768.0)
            .collect(),
        SampleFormat::Pcm24In32 => bytes
            .chunks_exact(4)
            .map(|c| {
                assert_eq!(c[0], 0, "24-in-32 must leave the low byte zero");
                i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32 / 2_147_483_648.0
            })
            .collect(),
        SampleFormat::Pcm32 => bytes
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32 / 2_147_483_648.0)
            .collect(),
        SampleFormat::Float32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    }
}

pub fn all_formats() -> Vec<StreamFormat> {
    let mut v = Vec::new();
    for rate in [48_000, 44_100] {
        for channels in [1, 2] {
            for sample in SampleFormat::ALL {
                v.push(StreamFormat {
                    rate,
                    channels,
                    sample,
                });
            }
        }
    }
    v
}
