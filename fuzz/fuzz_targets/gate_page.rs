//! What the gate inside PipeWire reads from its shared page (driver/linux/gate): any bytes, and
//! any bytes written between cycles (a hostile process of the user can write the page), must
//! never make it panic, and must give exact zeros unless the header is valid, the lease holds
//! and the state is live.
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};
use hardmute_linux_gate::abi::GateShm;
use hardmute_linux_gate::rt::{GateRt, Verdict};
use libfuzzer_sys::fuzz_target;

const WORDS: usize = core::mem::size_of::<GateShm>() / 8;

fuzz_target!(|data: &[u8]| {
    // The page as raw words (GateShm is atomics only: every bit pattern is a valid value).
    let words: [AtomicU64; WORDS] = core::array::from_fn(|_| AtomicU64::new(0));
    let mut chunks = data.chunks(8);
    for w in &words {
        let mut b = [0u8; 8];
        if let Some(c) = chunks.next() {
            b[..c.len()].copy_from_slice(c);
        }
        w.store(u64::from_le_bytes(b), Ordering::Relaxed);
    }
    // SAFETY: `words` is 8-aligned, exactly size_of::<GateShm>() bytes, and GateShm is made of
    // atomics only.
    let shm: &GateShm = unsafe { &*(words.as_ptr() as *const GateShm) };
    let rate = 8_000 + u32::from(data.first().copied().unwrap_or(0)) * 1000;
    let mut gate = GateRt::new(rate, Some(shm));
    gate.activate(
        Some(shm),
        u64::from_le_bytes(*b"\x00\x00\x00\x00\x01\x00\x00\x00"),
    );
    let mut buf = [0.0f32; 512];
    // The rest of the input drives cycles: (frames, word to overwrite, value).
    let mut rest = data.get(WORDS * 8..).unwrap_or(&[]).chunks(10);
    for _ in 0..64 {
        let op = rest.next().unwrap_or(&[]);
        let frames = usize::from(op.first().copied().unwrap_or(128)) * 2 % (buf.len() + 1);
        if op.len() >= 10 {
            let idx = usize::from(op[1]) % WORDS;
            let v = u64::from_le_bytes(op[2..10].try_into().unwrap());
            words[idx].store(v, Ordering::SeqCst);
        }
        for (i, s) in buf.iter_mut().enumerate() {
            *s = 0.25 + i as f32 * 1e-3;
        }
        let verdict = gate.process(Some(shm), &mut buf[..frames], false);
        if verdict != Verdict::Live {
            assert!(
                buf[..frames].iter().all(|s| s.to_bits() == 0),
                "{verdict:?}"
            );
        }
        if !shm.control.header_ok() {
            assert_eq!(verdict, Verdict::NoBlock);
        }
    }
});
