//! Fuzzes the shared bridge ring's reader against a hostile writer (hardmute_core::ring: what
//! the Windows kernel driver reads from a user buffer every 1 ms tick). The other side owns the
//! whole header and can write any position, capacity or channel count at any time.
//!
//! Properties checked on every input:
//! - attach accepts only consistent headers (capacity a whole number of frames, within storage);
//! - nothing panics and no index leaves the storage, whatever the positions;
//! - a read never returns more than asked or more than the capacity, and `len` never exceeds it;
//! - impossible positions (more readable than the capacity) read as an empty ring;
//! - samples read are bit-exact copies of slots (nothing invented).
#![no_main]

use core::sync::atomic::{AtomicU32, Ordering::Relaxed};
use hardmute_core::ring::{RingHeader, SampleRing, SharedRing, RING_MAGIC, RING_VERSION};
use libfuzzer_sys::fuzz_target;

fn u64_at(d: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    for (i, x) in b.iter_mut().enumerate() {
        *x = d.get(at + i).copied().unwrap_or(0);
    }
    u64::from_le_bytes(b)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let storage = usize::from(data[0]) + 1;
    let slots: Vec<AtomicU32> = (0..storage)
        .map(|i| AtomicU32::new(0x3f00_0000 | i as u32))
        .collect();
    let header = RingHeader::new(u32::from(data[1]), u32::from(data[2] % 40));
    if data[3] & 1 == 1 {
        header
            .magic
            .store(u32::from_le_bytes([data[3], 0, 0, 0]), Relaxed);
    }
    if data[3] & 2 == 2 {
        header.version.store(u32::from(data[3]), Relaxed);
    }
    let Ok(ring) = SharedRing::attach(&header, &slots) else {
        let (m, v) = (header.magic.load(Relaxed), header.version.load(Relaxed));
        let (cap, ch) = (
            header.capacity.load(Relaxed) as usize,
            header.channels.load(Relaxed) as usize,
        );
        let valid = m == RING_MAGIC
            && v == RING_VERSION
            && (1..=32).contains(&ch)
            && cap > 0
            && cap <= storage
            && cap % ch == 0;
        assert!(!valid, "a consistent header was refused");
        return;
    };
    let capacity = ring.capacity();
    assert!(capacity <= storage && capacity % ring.channels() == 0);
    let mut reader = ring.reader();
    let mut at = 4;
    // Operations: 0 = hostile header write (positions / capacity / channels), 1 = read, 2 = len.
    while at + 9 <= data.len() {
        let op = data[at];
        let value = u64_at(data, at + 1);
        at += 9;
        match op % 6 {
            0 => header.write_pos.store(value, Relaxed),
            1 => header.read_pos.store(value, Relaxed),
            2 => {
                // Changing the header after attach must not matter.
                header.capacity.store(value as u32, Relaxed);
                header.channels.store((value >> 32) as u32, Relaxed);
            }
            3 | 4 => {
                let want = (value % 600) as usize;
                let (r, w) = (
                    header.read_pos.load(Relaxed),
                    header.write_pos.load(Relaxed),
                );
                let possible = w.wrapping_sub(r) <= capacity as u64;
                let mut out = vec![f32::NAN; want];
                let got = reader.pop_into(&mut out);
                assert!(got <= want && got <= capacity);
                if !possible {
                    assert_eq!(got, 0, "impossible positions read as empty");
                }
                for s in &out[..got] {
                    assert_eq!(
                        s.to_bits() & 0xffff_0000,
                        0x3f00_0000,
                        "a sample not from a slot"
                    );
                }
            }
            _ => assert!(reader.len() <= capacity),
        }
    }
});
