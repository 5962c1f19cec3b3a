//! The capture stream under a simulated PortCls: KS state machine, QPC position and packet
//! math, and the timer tick's delivery through the hard-mute gate.
mod common;

use common::*;
use hardmute_core::control::{Authority, ChangeSource, ControlBlock};
use hardmute_windows_model::clock::SegmentClock;
use hardmute_windows_model::format::{SampleFormat, StreamFormat};
use hardmute_windows_model::miniport::WaveMiniport;
use hardmute_windows_model::status::*;
use hardmute_windows_model::stream::*;

const ONE_MS: u64 = QPC_FREQ / 1000;

fn stereo48(sample: SampleFormat) -> StreamFormat {
    StreamFormat {
        rate: 48_000,
        channels: 2,
        sample,
    }
}

/// Deterministic jitter source (xorshift) so long runs are reproducible.
struct Jitter(u64);
impl Jitter {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// A timer period: 1 ms +-50%, with an occasional long stall.
    fn period(&mut self, qpc_freq: u64) -> u64 {
        let ms = qpc_freq / 1000;
        let r = self.next();
        if r.is_multiple_of(997) {
            ms * 25
        } else {
            ms / 2 + r % ms
        }
    }
}

fn noise(n: usize, seed: u64) -> Vec<f32> {
    let mut j = Jitter(seed | 1);
    (0..n)
        .map(|_| (j.next() % 2001) as f32 / 1000.0 - 1.0)
        .map(|v| v * 0.9)
        .collect()
}

#[test]
fn ks_states_step_one_at_a_time_and_run_needs_a_buffer() {
    let mut mp = WaveMiniport::new();
    let f = stereo48(SampleFormat::Pcm16);
    let mut s = mp
        .new_stream(0, true, &extensible_bytes(&f), QPC_FREQ)
        .unwrap();
    assert_eq!(
        s.set_state(KsState::Run, 0),
        Err(STATUS_INVALID_DEVICE_STATE)
    );
    assert_eq!(
        s.set_state(KsState::Pause, 0),
        Err(STATUS_INVALID_DEVICE_STATE)
    );
    assert_eq!(s.set_state(KsState::Acquire, 0), Ok(TimerAction::None));
    assert_eq!(
        s.set_state(KsState::Run, 0),
        Err(STATUS_INVALID_DEVICE_STATE),
        "ACQUIRE -> RUN skips PAUSE"
    );
    assert_eq!(s.set_state(KsState::Pause, 0), Ok(TimerAction::None));
    assert_eq!(
        s.set_state(KsState::Run, 0),
        Err(STATUS_INVALID_DEVICE_STATE),
        "no buffer yet"
    );
    assert_eq!(
        s.allocate_buffer(1920, 0),
        Err(STATUS_INVALID_DEVICE_STATE),
        "buffers are allocated in STOP"
    );
    assert_eq!(s.set_state(KsState::Acquire, 0), Ok(TimerAction::None));
    assert_eq!(s.set_state(KsState::Stop, 0), Ok(TimerAction::None));
    let g = s.allocate_buffer(1920, 2).unwrap();
    assert_eq!(
        s.allocate_buffer(1920, 2),
        Err(STATUS_INVALID_DEVICE_STATE),
        "second allocation"
    );
    assert_eq!(
        g,
        BufferGeometry {
            bytes: 1920,
            frames: 480,
            notifications: 2
        }
    );
    for st in [KsState::Acquire, KsState::Pause] {
        s.set_state(st, 0).unwrap();
    }
    assert_eq!(
        s.set_format(stereo48(SampleFormat::Float32)),
        Err(STATUS_INVALID_DEVICE_STATE)
    );
    assert_eq!(s.timer_action_for(KsState::Run), TimerAction::None);
    assert_eq!(s.set_state(KsState::Run, 0), Ok(TimerAction::Start));
    assert_eq!(s.timer_action_for(KsState::Pause), TimerAction::Stop);
    assert_eq!(s.set_state(KsState::Pause, 0), Ok(TimerAction::Stop));
    assert_eq!(
        s.set_state(KsState::Stop, 0),
        Err(STATUS_INVALID_DEVICE_STATE)
    );
}

#[test]
fn set_format_in_stop_rescales_the_buffer_and_rejects_unsupported() {
    let mut port = SimPort::open(stereo48(SampleFormat::Pcm16), 4 * 480, 0);
    for st in [KsState::Pause, KsState::Acquire, KsState::Stop] {
        port.set_state(st);
    }
    port.stream
        .set_format(StreamFormat {
            rate: 44_100,
            channels: 2,
            sample: SampleFormat::Float32,
        })
        .unwrap();
    assert_eq!(port.stream.buffer().unwrap().frames, 4 * 480 / 8);
    let bad = StreamFormat {
        rate: 96_000,
        channels: 2,
        sample: SampleFormat::Float32,
    };
    assert_eq!(port.stream.set_format(bad), Err(STATUS_NO_MATCH));
}

#[test]
fn buffer_geometry_is_clamped_and_packet_aligned() {
    let f = stereo48(SampleFormat::Pcm24In32);
    let g = buffer_geometry(&f, 0, 0).unwrap();
    assert_eq!(g.frames, 48 * MIN_BUFFER_MS);
    let g = buffer_geometry(&f, u32::MAX, 0).unwrap();
    assert_eq!(g.frames, 48 * MAX_BUFFER_MS);
    let g = buffer_geometry(&f, 8 * 1001 + 7, 3).unwrap();
    assert_eq!(g.frames % 3, 0);
    assert_eq!(g.bytes, g.frames * 8);
    assert!(g.frames <= 1001);
    assert_eq!(
        buffer_geometry(&f, 4800, MAX_NOTIFICATIONS + 1),
        Err(STATUS_INVALID_PARAMETER)
    );
}

#[test]
fn one_stream_per_filter_and_only_on_the_host_capture_pin() {
    let mut mp = WaveMiniport::new();
    let f = extensible_bytes(&stereo48(SampleFormat::Pcm16));
    assert_eq!(
        mp.new_stream(1, true, &f, QPC_FREQ).err(),
        Some(STATUS_INVALID_PARAMETER),
        "bridge pin"
    );
    assert_eq!(
        mp.new_stream(0, false, &f, QPC_FREQ).err(),
        Some(STATUS_INVALID_PARAMETER),
        "render"
    );
    assert_eq!(
        mp.new_stream(0, true, &f[..50], QPC_FREQ).err(),
        Some(STATUS_BUFFER_TOO_SMALL)
    );
    let _s = mp.new_stream(0, true, &f, QPC_FREQ).unwrap();
    assert_eq!(
        mp.new_stream(0, true, &f, QPC_FREQ).err(),
        Some(STATUS_INSUFFICIENT_RESOURCES)
    );
    mp.stream_closed();
    assert!(mp.new_stream(0, true, &f, QPC_FREQ).is_ok());
}

#[test]
fn clock_has_no_drift_over_a_simulated_day_at_odd_qpc_frequencies() {
    // 10 MHz (Win10+ QPC), the ACPI PM timer, and a 2.9 GHz TSC.
    for qpc_freq in [10_000_000u64, 3_579_545, 2_900_000_000] {
        for rate in [48_000u32, 44_100] {
            let mut clock = SegmentClock::new(qpc_freq, rate);
            let start = 123_456_789;
            clock.start_segment(start, 0);
            let mut j = Jitter(qpc_freq ^ u64::from(rate));
            let (mut now, mut last) = (start, 0);
            let day = 86_400 * qpc_freq;
            while now - start < day {
                // Big irregular steps keep the test fast; the formula has no per-step state.
                now += j.next() % (qpc_freq * 7) + 1;
                let frames = clock.frames_at(now);
                assert!(frames >= last, "monotonic");
                let exact =
                    (u128::from(now - start) * u128::from(rate) / u128::from(qpc_freq)) as u64;
                assert_eq!(frames, exact, "qpc {qpc_freq} rate {rate}");
                // The inverse gives the first tick at which a frame is due.
                let t = clock.qpc_of_frame(frames);
                assert!(
                    clock.frames_at(t) >= frames && (t == start || clock.frames_at(t - 1) < frames)
                );
                last = frames;
            }
            assert!(last >= 86_400 * u64::from(rate));
        }
    }
}

#[test]
fn position_is_monotonic_and_matches_the_byte_rate_over_a_long_jittery_run() {
    for f in [
        stereo48(SampleFormat::Pcm16),
        StreamFormat {
            rate: 44_100,
            channels: 1,
            sample: SampleFormat::Float32,
        },
    ] {
        let ctl = ControlBlock::new(false);
        let mut port = SimPort::open(f, f.byte_rate() / 100, 2); // 10 ms buffer
        let run_start = port.now;
        let mut j = Jitter(7);
        let mut total = 0u64;
        let mut prev_frames = 0;
        // Ten simulated minutes of 1 ms (+-50%, with stalls) timer ticks.
        while port.now - run_start < 600 * QPC_FREQ {
            total += port.tick_with(j.period(QPC_FREQ), &ctl, None, 2);
            let frames = port.stream.frames_written();
            assert!(frames >= prev_frames);
            prev_frames = frames;
            let expect = (u128::from(port.now - run_start) * u128::from(f.rate)
                / u128::from(QPC_FREQ)) as u64;
            assert_eq!(frames, expect);
            let geometry = port.stream.buffer().unwrap();
            let pos = port.stream.position();
            assert_eq!(
                pos.write_offset,
                frames % u64::from(geometry.frames) * u64::from(f.block_align())
            );
            assert_eq!(pos.play_offset, pos.write_offset);
        }
        assert_eq!(total, prev_frames, "tick reports add up to the position");
        let bytes = prev_frames * u64::from(f.block_align());
        let secs = (port.now - run_start) as f64 / QPC_FREQ as f64;
        assert!((bytes as f64 / secs - f64::from(f.byte_rate())).abs() < 1.0);
    }
}

#[test]
fn pause_freezes_position_and_stop_resets_it() {
    let ctl = ControlBlock::new(true);
    let mut port = SimPort::open(stereo48(SampleFormat::Pcm16), 19_200, 0);
    for _ in 0..100 {
        port.tick_with(ONE_MS, &ctl, None, 2);
    }
    assert_eq!(port.stream.frames_written(), 4_800);
    port.set_state(KsState::Pause);
    port.now += 5 * QPC_FREQ; // paused for 5 s
    assert_eq!(
        port.tick_with(ONE_MS, &ctl, None, 2),
        0,
        "no frames while paused"
    );
    port.set_state(KsState::Run);
    port.tick_with(ONE_MS, &ctl, None, 2);
    assert_eq!(
        port.stream.frames_written(),
        4_848,
        "continues where it paused"
    );
    port.set_state(KsState::Pause);
    port.set_state(KsState::Acquire);
    port.set_state(KsState::Stop);
    assert_eq!(port.stream.frames_written(), 0);
    assert_eq!(port.stream.position().write_offset, 0);
}

#[test]
fn packets_are_signalled_once_per_boundary_with_exact_timestamps() {
    let ctl = ControlBlock::new(true);
    let f = stereo48(SampleFormat::Float32);
    let mut port = SimPort::open(f, 480 * 8, 2); // 10 ms, two 5 ms packets
    let start = port.now;
    let mut j = Jitter(99);
    let mut signals = 0u64;
    let mut last_pkt: Option<(u64, u64)> = None;
    for _ in 0..20_000 {
        let before = port.now;
        port.now += j.period(QPC_FREQ);
        let rep = port
            .stream
            .tick(port.now, &ctl, &mut NoBridge, 2, &mut port.buffer);
        if rep.signal {
            signals += 1;
            let (n, qpc) = port.stream.last_packet().unwrap();
            assert!(
                qpc > before && qpc <= port.now,
                "packet completed during this tick"
            );
            assert_eq!(
                qpc,
                start + (n + 1) * 240 * QPC_FREQ / 48_000,
                "5 ms packets from the run start"
            );
            if let Some((pn, pq)) = last_pkt {
                assert!(n > pn && qpc > pq);
            }
            last_pkt = Some((n, qpc));
        }
    }
    let packets = port.stream.frames_written() / 240;
    assert_eq!(last_pkt.unwrap().0 + 1, packets);
    assert!(
        signals <= packets && signals > packets * 9 / 10,
        "{signals} of {packets}"
    );
}

#[test]
fn muted_delivers_exact_zeros_in_every_format_while_the_bridge_is_full_of_noise() {
    for f in all_formats() {
        let ctl = ControlBlock::new(true);
        let bridge = Bridge::new(48_000 * 2, 2);
        let mut port = SimPort::open(f, f.byte_rate() / 50, 2);
        let mut j = Jitter(3);
        for i in 0..500 {
            bridge.push(&noise(200, i));
            port.tick_with(j.period(QPC_FREQ), &ctl, Some(&bridge), 2);
            let read = port.engine_read();
            assert!(
                read.iter().all(|&b| b == 0),
                "{f:?}: non-zero byte while muted"
            );
        }
        assert!(port.read_frames > 10_000);
    }
}

#[test]
fn unmute_delivers_fresh_audio_and_mute_takes_effect_on_the_next_tick() {
    for f in all_formats() {
        let ctl = ControlBlock::new(true);
        let bridge = Bridge::new(48_000 * 2, 2);
        let mut port = SimPort::open(f, f.byte_rate() / 50, 0);
        // Audio captured while muted sits in the ring...
        bridge.push(&noise(4_000, 1));
        port.tick_with(ONE_MS, &ctl, Some(&bridge), 2);
        ctl.set_muted(false, ChangeSource::Hotkey, Authority::Owner)
            .unwrap();
        // ...and after the unmute only audio captured after it may come out.
        let mut heard = 0usize;
        for i in 0..100 {
            bridge.push(&noise(2 * f.rate as usize / 1000 + 2, 100 + i));
            port.tick_with(ONE_MS, &ctl, Some(&bridge), 2);
            heard += decode(f.sample, &port.engine_read())
                .iter()
                .filter(|v| v.abs() > 1e-3)
                .count();
        }
        assert!(
            heard > 1_000,
            "{f:?}: unmuted stream carries audio ({heard})"
        );
        ctl.set_muted(true, ChangeSource::OtherClient, Authority::Other)
            .unwrap();
        for i in 0..50 {
            bridge.push(&noise(200, 500 + i));
            port.tick_with(ONE_MS, &ctl, Some(&bridge), 2);
            assert!(
                port.engine_read().iter().all(|&b| b == 0),
                "{f:?}: first tick after mute is silent"
            );
        }
    }
}

#[test]
fn no_bridge_means_zeros_and_the_clock_keeps_running() {
    for f in all_formats() {
        let ctl = ControlBlock::new(false);
        let mut port = SimPort::open(f, f.byte_rate() / 100, 0);
        for _ in 0..200 {
            port.tick_with(ONE_MS, &ctl, None, 1);
        }
        assert_eq!(port.stream.frames_written(), u64::from(f.rate) / 5);
        let read = port.engine_read();
        assert_eq!(
            read.len() as u64,
            u64::from(f.rate) / 5 * u64::from(f.block_align())
        );
        assert!(read.iter().all(|&b| b == 0), "{f:?}");
        assert!(
            ctl.snapshot().underruns > 0,
            "missing bridge data is counted"
        );
    }
}

#[test]
fn cadence_does_not_depend_on_what_the_mic_hears() {
    let f = stereo48(SampleFormat::Pcm16);
    let run = |muted: bool, with_bridge: bool| {
        let ctl = ControlBlock::new(muted);
        let bridge = Bridge::new(96_000, 2);
        let mut port = SimPort::open(f, 1920, 2);
        let mut j = Jitter(42);
        let mut trace = Vec::new();
        for i in 0..3_000 {
            if with_bridge && i % 3 != 0 {
                bridge.push(&noise(300, i));
            }
            port.now += j.period(QPC_FREQ);
            let rep = if with_bridge {
                port.stream.tick(
                    port.now,
                    &ctl,
                    &mut bridge.ring().reader(),
                    2,
                    &mut port.buffer,
                )
            } else {
                port.stream
                    .tick(port.now, &ctl, &mut NoBridge, 2, &mut port.buffer)
            };
            trace.push((rep, port.stream.position()));
        }
        trace
    };
    let reference = run(true, false);
    assert_eq!(run(false, true), reference);
    assert_eq!(run(true, true), reference);
}

#[test]
fn a_stall_longer_than_the_buffer_rewrites_the_whole_buffer() {
    for f in all_formats() {
        let ctl = ControlBlock::new(true);
        let mut port = SimPort::open(f, f.byte_rate() / 100, 0);
        // Poison is 0xA5: after a 50 ms stall every byte must have been written (zeros).
        let frames = port.tick_with(50 * ONE_MS, &ctl, None, 2);
        assert_eq!(frames, u64::from(f.rate) / 20);
        assert!(port.buffer.iter().all(|&b| b == 0), "{f:?}");
    }
}

#[test]
fn mono_bridge_feeds_both_stereo_channels_and_24_bit_is_msb_justified() {
    let ctl = ControlBlock::new(false);
    let f = stereo48(SampleFormat::Pcm24In32);
    let bridge = Bridge::new(9_600, 1);
    let mut port = SimPort::open(f, f.byte_rate() / 50, 0);
    // Let the unmute's stale-flush pass, then feed a constant.
    port.tick_with(ONE_MS, &ctl, Some(&bridge), 1);
    port.engine_read();
    bridge.push(&[0.5; 720]);
    for _ in 0..15 {
        port.tick_with(ONE_MS, &ctl, Some(&bridge), 1);
    }
    let vals = decode(f.sample, &port.engine_read());
    assert_eq!(vals.len(), 2 * 720);
    // Past the unmute fade-in both channels hold 0.5 at 24-bit precision.
    for pair in vals[2 * 300..].chunks_exact(2) {
        assert!(
            (pair[0] - 0.5).abs() < 1e-6 && pair[0] == pair[1],
            "{pair:?}"
        );
    }
}

mod property {
    use super::*;
    use hardmute_core::control::{Authority, ChangeSource};
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Step {
        /// Advance simulated time by this many QPC ticks and fire the timer.
        Tick(u64),
        /// The bridge pushes this many frames of loud audio.
        Push(usize),
        Mute,
        Unmute,
        /// RUN -> PAUSE -> RUN after this many paused ticks.
        Pause(u64),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            6 => (1u64..60_000).prop_map(Step::Tick),
            3 => (0usize..400).prop_map(Step::Push),
            1 => Just(Step::Mute),
            1 => Just(Step::Unmute),
            1 => (0u64..50_000_000).prop_map(Step::Pause),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn muted_reads_are_zero_and_position_follows_qpc(
            fmt_index in 0usize..16, notifications in 0u32..4, steps in proptest::collection::vec(step(), 1..200)
        ) {
            let f = all_formats()[fmt_index];
            let ctl = ControlBlock::new(true);
            let bridge = Bridge::new(48_000, 2);
            let mut port = SimPort::open(f, f.byte_rate() / 100, notifications);
            // Frames due = frames at the last resume + exact floor over the RUN time since.
            let (mut seg_base, mut seg_ticks) = (0u64, 0u64);
            for s in steps {
                match s {
                    Step::Tick(t) => {
                        let muted_before = ctl.is_muted();
                        port.tick_with(t, &ctl, Some(&bridge), 2);
                        seg_ticks += t;
                        let read = port.engine_read();
                        if muted_before {
                            prop_assert!(read.iter().all(|&b| b == 0), "{:?}: audio while muted", f);
                        }
                        let due = seg_base + (u128::from(seg_ticks) * u128::from(f.rate) / u128::from(QPC_FREQ)) as u64;
                        prop_assert_eq!(port.stream.frames_written(), due);
                    }
                    Step::Push(n) => {
                        let loud: Vec<f32> = (0..n * 2).map(|i| if i % 2 == 0 { 0.8 } else { -0.8 }).collect();
                        bridge.push(&loud);
                    }
                    Step::Mute => {
                        ctl.set_muted(true, ChangeSource::Hotkey, Authority::Other).unwrap();
                    }
                    Step::Unmute => {
                        ctl.set_muted(false, ChangeSource::Hotkey, Authority::Owner).unwrap();
                    }
                    Step::Pause(t) => {
                        port.set_state(KsState::Pause);
                        let frozen = port.stream.frames_written();
                        port.now += t;
                        prop_assert_eq!(port.tick_with(1, &ctl, Some(&bridge), 2), 0, "paused: no frames");
                        prop_assert_eq!(port.stream.frames_written(), frozen);
                        port.set_state(KsState::Run);
                        seg_base = frozen;
                        seg_ticks = 0;
                    }
                }
            }
        }
    }
}
