//! Single-producer/single-consumer sample rings from the bridge to the delivery side.
//!
//! The ring always carries `f32` frames at the virtual device's rate and channel count (the
//! bridge converts and resamples before it pushes); delivery converts to the app's format.
//!
//! Two implementations of one [`SampleRing`] trait:
//! - [`SharedRing`]: a `#[repr(C)]` header plus atomic sample slots, for rings that cross an
//!   address-space boundary (the Windows kernel reads a user buffer locked with an MDL). Written
//!   entirely in safe Rust: samples are `AtomicU32` bit patterns, which compile to plain moves.
//!   The reader trusts nothing the other side can write: positions that make no sense are treated
//!   as an empty ring.
//! - [`RbConsumer`]: adapts a `ringbuf` consumer for rings inside one process (the macOS plugin,
//!   the simulated backend, bridge staging).

use crate::sample::Sample;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};

/// What the delivery side needs from a ring.
pub trait SampleRing {
    /// Samples (not frames) ready to read.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Moves up to `out.len()` samples into `out`, converting from `f32`; returns how many.
    fn pop_into<S: Sample>(&mut self, out: &mut [S]) -> usize;
    /// Drops everything currently readable.
    fn discard_all(&mut self);
}

pub const RING_MAGIC: u32 = u32::from_le_bytes(*b"HMRG");
pub const RING_VERSION: u32 = 1;

/// The header at the start of a shared ring; `capacity` sample slots follow it.
///
/// Every field is atomic: the other side of the ABI (a user process, for the kernel) can write
/// any of them at any time, and a plain field would make that a data race in Rust's model.
#[repr(C)]
#[derive(Debug)]
pub struct RingHeader {
    pub magic: AtomicU32,
    pub version: AtomicU32,
    /// In samples; a whole number of frames.
    pub capacity: AtomicU32,
    pub channels: AtomicU32,
    /// Total samples ever written (producer-owned).
    pub write_pos: AtomicU64,
    /// Total samples ever read (consumer-owned).
    pub read_pos: AtomicU64,
}

const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    assert!(size_of::<RingHeader>() == 32);
    assert!(align_of::<RingHeader>() == 8);
    assert!(offset_of!(RingHeader, magic) == 0);
    assert!(offset_of!(RingHeader, version) == 4);
    assert!(offset_of!(RingHeader, capacity) == 8);
    assert!(offset_of!(RingHeader, channels) == 12);
    assert!(offset_of!(RingHeader, write_pos) == 16);
    assert!(offset_of!(RingHeader, read_pos) == 24);
};

impl RingHeader {
    pub const fn new(capacity_samples: u32, channels: u32) -> Self {
        RingHeader {
            magic: AtomicU32::new(RING_MAGIC),
            version: AtomicU32::new(RING_VERSION),
            capacity: AtomicU32::new(capacity_samples),
            channels: AtomicU32::new(channels),
            write_pos: AtomicU64::new(0),
            read_pos: AtomicU64::new(0),
        }
    }
}

/// Why a shared ring was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingError {
    BadMagic,
    BadVersion,
    /// Zero, larger than the storage, or not a whole number of frames.
    BadCapacity,
    BadChannels,
}

/// A validated view of a shared ring. Capacity and channels are copied at attach time, so the
/// other side changing the header later cannot make us index out of bounds.
#[derive(Clone, Copy, Debug)]
pub struct SharedRing<'a> {
    header: &'a RingHeader,
    slots: &'a [AtomicU32],
    capacity: u64,
    channels: u32,
}

impl<'a> SharedRing<'a> {
    /// Validates `header` against `slots` (the storage after it).
    pub fn attach(header: &'a RingHeader, slots: &'a [AtomicU32]) -> Result<Self, RingError> {
        if header.magic.load(Relaxed) != RING_MAGIC {
            return Err(RingError::BadMagic);
        }
        if header.version.load(Relaxed) != RING_VERSION {
            return Err(RingError::BadVersion);
        }
        let (cap, ch) = (header.capacity.load(Relaxed), header.channels.load(Relaxed));
        if ch == 0 || ch > 32 {
            return Err(RingError::BadChannels);
        }
        if cap == 0 || cap as usize > slots.len() || cap % ch != 0 {
            return Err(RingError::BadCapacity);
        }
        Ok(SharedRing {
            header,
            slots,
            capacity: cap as u64,
            channels: ch,
        })
    }

    pub fn channels(&self) -> usize {
        self.channels as usize
    }

    pub fn capacity(&self) -> usize {
        self.capacity as usize
    }

    /// Producer side of the same ring.
    pub fn writer(self) -> RingWriter<'a> {
        RingWriter { ring: self }
    }

    /// Consumer side of the same ring.
    pub fn reader(self) -> RingReader<'a> {
        RingReader { ring: self }
    }

    /// The slots for `n` samples starting at absolute position `pos`, as at most two contiguous
    /// runs (one modulo per call, not per sample). `n <= capacity` is the caller's promise.
    #[inline]
    fn runs(&self, pos: u64, n: usize) -> (&'a [AtomicU32], &'a [AtomicU32]) {
        let cap = self.capacity as usize;
        let start = (pos % self.capacity) as usize;
        let first = n.min(cap - start);
        // capacity <= slots.len() was checked at attach, so both ranges are in bounds.
        (&self.slots[start..start + first], &self.slots[..n - first])
    }
}

/// The bridge's end of a [`SharedRing`].
#[derive(Debug)]
pub struct RingWriter<'a> {
    ring: SharedRing<'a>,
}

impl RingWriter<'_> {
    pub fn capacity(&self) -> usize {
        self.ring.capacity()
    }

    /// Free space in samples.
    pub fn free(&self) -> usize {
        let w = self.ring.header.write_pos.load(Relaxed);
        let r = self.ring.header.read_pos.load(Acquire);
        let used = w.wrapping_sub(r).min(self.ring.capacity);
        (self.ring.capacity - used) as usize
    }

    /// Writes as many whole frames of `samples` as fit; returns the number of samples written.
    /// A short write is an overrun for the caller to count.
    pub fn push(&mut self, samples: &[f32]) -> usize {
        let ch = self.ring.channels as usize;
        let n = samples.len().min(self.free()) / ch * ch;
        let w = self.ring.header.write_pos.load(Relaxed);
        let (a, b) = self.ring.runs(w, n);
        for (slot, s) in a.iter().chain(b).zip(&samples[..n]) {
            slot.store(s.to_bits(), Relaxed);
        }
        // Wrapping: positions are the other side's to write; near u64::MAX they wrap, and an
        // overflow check would panic (found by fuzz/fuzz_targets/ring_positions.rs).
        self.ring
            .header
            .write_pos
            .store(w.wrapping_add(n as u64), Release);
        n
    }
}

/// The delivery side's end of a [`SharedRing`].
#[derive(Debug)]
pub struct RingReader<'a> {
    ring: SharedRing<'a>,
}

impl RingReader<'_> {
    /// Readable samples, or `None` when the positions are impossible (a corrupted or hostile
    /// producer): the caller then delivers nothing from the ring.
    fn readable(&self) -> Option<(u64, u64)> {
        let r = self.ring.header.read_pos.load(Relaxed);
        let w = self.ring.header.write_pos.load(Acquire);
        let n = w.wrapping_sub(r);
        (n <= self.ring.capacity).then_some((r, n))
    }
}

impl SampleRing for RingReader<'_> {
    fn len(&self) -> usize {
        self.readable().map_or(0, |(_, n)| n as usize)
    }

    fn pop_into<S: Sample>(&mut self, out: &mut [S]) -> usize {
        let Some((r, avail)) = self.readable() else {
            self.discard_all();
            return 0;
        };
        let n = (out.len() as u64).min(avail) as usize;
        let (a, b) = self.ring.runs(r, n);
        for (o, slot) in out[..n].iter_mut().zip(a.iter().chain(b)) {
            *o = S::from_f32(f32::from_bits(slot.load(Relaxed)));
        }
        // Wrapping, as in `push`: a hostile producer can put `r` next to u64::MAX.
        self.ring
            .header
            .read_pos
            .store(r.wrapping_add(n as u64), Release);
        n
    }

    fn discard_all(&mut self) {
        let w = self.ring.header.write_pos.load(Acquire);
        self.ring.header.read_pos.store(w, Release);
    }
}

/// Adapts an in-process `ringbuf` consumer of `f32` samples.
pub struct RbConsumer<C>(pub C);

impl<C: ringbuf::traits::Consumer<Item = f32>> SampleRing for RbConsumer<C> {
    fn len(&self) -> usize {
        ringbuf::traits::Observer::occupied_len(&self.0)
    }

    fn pop_into<S: Sample>(&mut self, out: &mut [S]) -> usize {
        // Convert through a stack chunk: no allocation on the realtime path.
        let mut chunk = [0.0f32; 256];
        let mut done = 0;
        while done < out.len() {
            let want = (out.len() - done).min(chunk.len());
            let got = self.0.pop_slice(&mut chunk[..want]);
            for (o, s) in out[done..done + got].iter_mut().zip(&chunk[..got]) {
                *o = S::from_f32(*s);
            }
            done += got;
            if got < want {
                break;
            }
        }
        done
    }

    fn discard_all(&mut self) {
        let n = self.len();
        self.0.skip(n);
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    fn slots(n: usize) -> Vec<AtomicU32> {
        (0..n).map(|_| AtomicU32::new(0)).collect()
    }

    /// Positions are written by the other side: any u64, including next to the wrap. Reading
    /// and writing across u64::MAX neither panics nor loses the ring (fuzz finding).
    #[test]
    fn positions_wrap_around_u64_max() {
        let s = slots(8);
        let h = RingHeader::new(8, 2);
        h.read_pos.store(u64::MAX - 1, Relaxed);
        h.write_pos.store(u64::MAX - 1, Relaxed);
        let ring = SharedRing::attach(&h, &s).unwrap();
        assert_eq!(ring.writer().push(&[1.0, 2.0, 3.0, 4.0]), 4);
        assert_eq!(h.write_pos.load(Relaxed), 2);
        let mut reader = ring.reader();
        assert_eq!(reader.len(), 4);
        let mut out = [0.0f32; 8];
        assert_eq!(reader.pop_into(&mut out), 4);
        assert_eq!(&out[..4], &[1.0, 2.0, 3.0, 4.0]);
        assert_eq!((h.read_pos.load(Relaxed), reader.len()), (2, 0));
    }

    #[test]
    fn attach_validates_everything() {
        let s = slots(8);
        assert!(SharedRing::attach(&RingHeader::new(8, 2), &s).is_ok());
        assert_eq!(
            SharedRing::attach(&RingHeader::new(9, 2), &s).unwrap_err(),
            RingError::BadCapacity
        );
        assert_eq!(
            SharedRing::attach(&RingHeader::new(6, 4), &s).unwrap_err(),
            RingError::BadCapacity
        );
        assert_eq!(
            SharedRing::attach(&RingHeader::new(0, 1), &s).unwrap_err(),
            RingError::BadCapacity
        );
        assert_eq!(
            SharedRing::attach(&RingHeader::new(8, 0), &s).unwrap_err(),
            RingError::BadChannels
        );
        let h = RingHeader::new(8, 2);
        h.magic.store(0, Relaxed);
        assert_eq!(SharedRing::attach(&h, &s).unwrap_err(), RingError::BadMagic);
        let h = RingHeader::new(8, 2);
        h.version.store(2, Relaxed);
        assert_eq!(
            SharedRing::attach(&h, &s).unwrap_err(),
            RingError::BadVersion
        );
    }

    #[test]
    fn fifo_wraps_and_writes_whole_frames_only() {
        let s = slots(6);
        let h = RingHeader::new(6, 2);
        let ring = SharedRing::attach(&h, &s).unwrap();
        let (mut w, mut r) = (ring.writer(), ring.reader());
        assert_eq!(
            w.push(&[1.0, 2.0, 3.0, 4.0, 5.0]),
            4,
            "half a frame is not written"
        );
        let mut out = [0i16; 3];
        assert_eq!(r.pop_into(&mut out[..2]), 2);
        assert_eq!(w.push(&[6.0, 7.0, 8.0, 9.0]), 4);
        assert_eq!(w.push(&[1.0, 1.0]), 0, "full");
        let mut out = [0.0f32; 10];
        assert_eq!(r.pop_into(&mut out), 6);
        assert_eq!(&out[..6], &[3.0, 4.0, 6.0, 7.0, 8.0, 9.0]);
        assert_eq!(r.pop_into(&mut out), 0);
    }

    #[test]
    fn hostile_positions_read_as_empty() {
        let s = slots(8);
        let h = RingHeader::new(8, 1);
        let ring = SharedRing::attach(&h, &s).unwrap();
        let mut r = ring.reader();
        h.write_pos.store(1 << 40, Relaxed); // the other side claims more than capacity
        let mut out = [7.0f32; 4];
        assert_eq!(r.len(), 0);
        assert_eq!(r.pop_into(&mut out), 0);
        // and after resync the ring works again
        let mut w = ring.writer();
        assert_eq!(w.push(&[0.5]), 1);
        assert_eq!(r.pop_into(&mut out), 1);
        assert_eq!(out[0], 0.5);
    }

    #[test]
    fn ringbuf_adapter_converts_and_discards() {
        use ringbuf::traits::{Producer, Split};
        let (mut p, c) = ringbuf::HeapRb::<f32>::new(1024).split();
        let mut c = RbConsumer(c);
        let data: Vec<f32> = (0..600).map(|i| i as f32 / 1000.0).collect();
        assert_eq!(p.push_slice(&data), 600);
        let mut out = [0i16; 500];
        assert_eq!(c.pop_into(&mut out), 500);
        assert_eq!(out[499], i16::from_f32(0.499));
        assert_eq!(c.len(), 100);
        c.discard_all();
        assert!(c.is_empty());
    }
}
