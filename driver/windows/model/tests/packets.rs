//! Packet-mode capture (`IMiniportWaveRTInputStream::GetReadPacket`) under the simulated
//! PortCls: the timer tick completes packets over simulated QPC time, the glue publishes them
//! to a `PacketBoard`, and the audio engine reads them through a `ReadCursor`.
mod common;

use common::*;
use hardmute_core::control::ControlBlock;
use hardmute_windows_model::format::{SampleFormat, StreamFormat};
use hardmute_windows_model::packets::{PacketBoard, ReadCursor, ReadPacket};
use hardmute_windows_model::status::*;
use hardmute_windows_model::stream::{KsState, NoBridge};

const ONE_MS: u64 = QPC_FREQ / 1000;

fn stereo48() -> StreamFormat {
    StreamFormat {
        rate: 48_000,
        channels: 2,
        sample: SampleFormat::Float32,
    }
}

/// A stream in RUN with `notifications` packets of 5 ms (240 frames at 48 kHz) each.
fn open(notifications: u32) -> (SimPort, PacketBoard) {
    let f = stereo48();
    let port = SimPort::open(f, 240 * f.block_align() * notifications, notifications);
    let board = PacketBoard::new();
    board.publish(&port.stream);
    (port, board)
}

/// One timer tick `ticks` QPC ticks later, then the glue's publish.
fn tick(port: &mut SimPort, board: &PacketBoard, ctl: &ControlBlock, ticks: u64) -> bool {
    port.now += ticks;
    let report = port
        .stream
        .tick(port.now, ctl, &mut NoBridge, 2, &mut port.buffer);
    board.publish(&port.stream);
    report.signal
}

/// QPC of a stream frame, rounded up, from the run start (what the model's clock promises).
fn qpc_of(start: u64, frame: u64) -> u64 {
    start + (frame * QPC_FREQ).div_ceil(48_000)
}

#[test]
fn nothing_to_read_before_the_first_packet_completes() {
    let ctl = ControlBlock::new(true);
    let (mut port, board) = open(2);
    let mut cursor = ReadCursor::new();
    assert_eq!(cursor.read(&board), Err(STATUS_DEVICE_NOT_READY));
    // 4 ms: 192 of the first packet's 240 frames.
    for _ in 0..4 {
        assert!(!tick(&mut port, &board, &ctl, ONE_MS));
        assert_eq!(cursor.read(&board), Err(STATUS_DEVICE_NOT_READY));
    }
    assert!(tick(&mut port, &board, &ctl, ONE_MS), "5 ms: packet 0 done");
    let p = cursor.read(&board).unwrap();
    assert_eq!(p.packet_number, 0);
    assert_eq!(p.flags, 0);
    assert!(!p.more_data);
    assert_eq!(
        cursor.read(&board),
        Err(STATUS_DEVICE_NOT_READY),
        "read once"
    );
}

#[test]
fn polling_mode_has_no_packets() {
    let ctl = ControlBlock::new(true);
    let f = stereo48();
    let mut port = SimPort::open(f, f.byte_rate() / 100, 0);
    let board = PacketBoard::new();
    for _ in 0..20 {
        port.now += ONE_MS;
        port.stream
            .tick(port.now, &ctl, &mut NoBridge, 2, &mut port.buffer);
        board.publish(&port.stream);
    }
    assert_eq!(
        ReadCursor::new().read(&board),
        Err(STATUS_INVALID_DEVICE_STATE)
    );
}

#[test]
fn an_engine_that_keeps_up_reads_every_packet_in_order_with_exact_timestamps() {
    let ctl = ControlBlock::new(true);
    let (mut port, board) = open(2);
    let start = port.now;
    let mut cursor = ReadCursor::new();
    let mut j = 0x9E37_79B9_7F4A_7C15u64;
    let mut read: Vec<ReadPacket> = Vec::new();
    for _ in 0..50_000 {
        // Timer period 1 ms +-50% (QPC time, so the clock must not care).
        j ^= j << 13;
        j ^= j >> 7;
        j ^= j << 17;
        let signalled = tick(&mut port, &board, &ctl, ONE_MS / 2 + j % ONE_MS);
        if signalled {
            // The engine wakes on the event and drains what is ready.
            loop {
                match cursor.read(&board) {
                    Ok(p) => {
                        let first = u64::from(p.packet_number) * 240;
                        // The packet's slot has not been reused yet (N = 2 packets).
                        assert!(port.stream.frames_written() <= first + 2 * 240);
                        assert!(p.performance_counter <= port.now);
                        read.push(p);
                        if !p.more_data {
                            break;
                        }
                    }
                    Err(status) => {
                        assert_eq!(status, STATUS_DEVICE_NOT_READY);
                        break;
                    }
                }
            }
        }
    }
    let completed = port.stream.frames_written() / 240;
    assert_eq!(
        read.len() as u64,
        completed,
        "every completed packet read once"
    );
    for (n, p) in read.iter().enumerate() {
        assert_eq!(u64::from(p.packet_number), n as u64);
        assert_eq!(p.performance_counter, qpc_of(start, n as u64 * 240));
    }
    assert_eq!(cursor.skipped(), 0);
}

#[test]
fn a_late_engine_gets_more_data_then_real_time() {
    let ctl = ControlBlock::new(true);
    let (mut port, board) = open(4);
    let start = port.now;
    let mut cursor = ReadCursor::new();
    // 12 ms: packets 0 and 1 complete, the engine has not read either.
    for _ in 0..12 {
        tick(&mut port, &board, &ctl, ONE_MS);
    }
    let a = cursor.read(&board).unwrap();
    let b = cursor.read(&board).unwrap();
    assert_eq!((a.packet_number, a.more_data), (0, true));
    assert_eq!((b.packet_number, b.more_data), (1, false));
    assert_eq!(b.performance_counter - a.performance_counter, 5 * ONE_MS);
    assert_eq!(a.performance_counter, start);
    assert_eq!(cursor.read(&board), Err(STATUS_DEVICE_NOT_READY));
}

#[test]
fn overflow_skips_to_the_oldest_intact_packet_and_counts_what_was_lost() {
    let ctl = ControlBlock::new(true);
    let (mut port, board) = open(4); // 4 x 5 ms
    let start = port.now;
    let mut cursor = ReadCursor::new();
    // The engine stalls for 52 ms: packets 0..=9 complete, 10 is 2 ms in, filling the slot
    // of packet 6. Intact: 7, 8, 9.
    for _ in 0..52 {
        tick(&mut port, &board, &ctl, ONE_MS);
    }
    assert_eq!(port.stream.packets_completed(), 10);
    let p = cursor.read(&board).unwrap();
    assert_eq!(p.packet_number, 7);
    assert_eq!(cursor.skipped(), 7);
    assert_eq!(p.performance_counter, qpc_of(start, 7 * 240));
    assert!(p.more_data);
    assert_eq!(cursor.read(&board).unwrap().packet_number, 8);
    let last = cursor.read(&board).unwrap();
    assert_eq!((last.packet_number, last.more_data), (9, false));
    assert_eq!(cursor.read(&board), Err(STATUS_DEVICE_NOT_READY));
    // Back in step: no more skips.
    for _ in 0..5 {
        tick(&mut port, &board, &ctl, ONE_MS);
    }
    assert_eq!(cursor.read(&board).unwrap().packet_number, 10);
    assert_eq!(cursor.skipped(), 7);
}

#[test]
fn stop_starts_the_packet_sequence_over_and_pause_keeps_it() {
    let ctl = ControlBlock::new(true);
    let (mut port, board) = open(2);
    let mut cursor = ReadCursor::new();
    for _ in 0..10 {
        tick(&mut port, &board, &ctl, ONE_MS);
        while cursor.read(&board).is_ok() {}
    }
    // PAUSE and back: the sequence continues where it was.
    port.set_state(KsState::Pause);
    board.publish(&port.stream);
    port.now += 100 * ONE_MS;
    port.set_state(KsState::Run);
    board.publish(&port.stream);
    let resumed_at = port.now;
    for _ in 0..5 {
        tick(&mut port, &board, &ctl, ONE_MS);
    }
    let p = cursor.read(&board).unwrap();
    assert_eq!(
        p.packet_number, 2,
        "no packet lost or repeated across PAUSE"
    );
    assert_eq!(
        p.performance_counter, resumed_at,
        "timestamped on the new segment"
    );
    // STOP resets the count: after RUN again the first packet is 0.
    for s in [KsState::Pause, KsState::Acquire, KsState::Stop] {
        port.set_state(s);
        board.publish(&port.stream);
    }
    assert_eq!(cursor.read(&board), Err(STATUS_DEVICE_NOT_READY));
    for s in [KsState::Acquire, KsState::Pause, KsState::Run] {
        port.set_state(s);
        board.publish(&port.stream);
    }
    let restart = port.now;
    for _ in 0..5 {
        tick(&mut port, &board, &ctl, ONE_MS);
    }
    let p = cursor.read(&board).unwrap();
    assert_eq!((p.packet_number, p.performance_counter), (0, restart));
    assert_eq!(cursor.skipped(), 0);
}
