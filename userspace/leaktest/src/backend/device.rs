//! The device-level backend: the leak test on a machine with the installed driver (macOS,
//! Windows), through the audio devices any app sees.
//!
//! Set-up the user makes once: a loopback device (macOS: BlackHole 2ch; Windows: VB-CABLE) is
//! hardmuted's physical source (`hardmute select-device "<loopback input>"`), and HardMute is
//! hard-muted. Then `hardmute leak-test --device-mode --play-to "<loopback output>" --mic
//! "<loopback input>"` plays the synthetic room into the loopback's output, so it reaches the
//! mic path exactly where a real room would, and records as an app would:
//! - (a) app-level mute: the loopback input directly (an app whose own mute gates nothing);
//! - (b) hard mute: "HardMute Microphone" (the driver's gate).
//!
//! Arrival times are wall-clock (`Instant` at each callback). The decisions — device checks with
//! messages listing what exists, refusing to run (b) unless HardMute is hard-muted before and
//! after, the schedule, mapping the recording back to clips — are here and tested with a fake
//! [`AudioDevices`]; the cpal implementation ([`cpal_host`], macOS and Windows) only moves samples.

use super::{concatenate_shuffled, playback_start, split_by_clip, Arrival, Backend};
use crate::activity::Clip;
use crate::sim::{AppCapture, Condition};
use std::time::{Duration, Instant};

#[cfg(any(target_os = "macos", windows, feature = "device-alsa"))]
pub mod cpal_host;

/// The name HardMute's virtual mic has on macOS and Windows.
pub const HARDMUTE_MIC: &str = "HardMute Microphone";
/// The stream format every device is opened with (mono is down/up-mixed by the implementation).
pub const RATE: u32 = 48_000;
/// How long the recorder runs before playback starts and after it ends.
pub const SETTLE: Duration = Duration::from_millis(500);

/// The few things the leak test needs from the OS's audio devices.
pub trait AudioDevices {
    /// Names of the capture devices, as the OS shows them.
    fn inputs(&self) -> Result<Vec<String>, String>;
    /// Names of the playback devices.
    fn outputs(&self) -> Result<Vec<String>, String>;
    /// Starts recording `input` as mono f32 at [`RATE`]; every buffer is time-stamped on arrival.
    fn record(&mut self, input: &str, epoch: Instant) -> Result<Box<dyn Recording>, String>;
    /// Plays `samples` (mono f32 at [`RATE`]) to `output` and returns once they have been played,
    /// with the time the first one was handed to the device.
    fn play(&mut self, output: &str, samples: &[f32]) -> Result<Instant, String>;
}

/// A running recording.
pub trait Recording {
    /// Stops and returns the samples and, per buffer, its arrival (relative to the epoch).
    fn finish(self: Box<Self>) -> Result<(Vec<f32>, Vec<Arrival>), String>;
}

/// Whether HardMute is hard-muted right now (asked from the daemon; an error = unknown).
pub type MuteProbe = Box<dyn FnMut() -> Result<bool, String>>;

/// Where the clips go and what is recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceSetup {
    /// The loopback's playback side.
    pub play_to: String,
    /// The loopback's capture side: hardmuted's source, and what (a) records.
    pub mic: String,
    /// What (b) records.
    pub hardmute_mic: String,
}

pub struct DeviceBackend<D: AudioDevices> {
    devices: D,
    setup: DeviceSetup,
    hard_muted: MuteProbe,
    /// Extra wait before and after playback.
    settle: Duration,
}

fn missing(kind: &str, name: &str, available: &[String]) -> String {
    if available.is_empty() {
        format!("no {kind} device named {name:?}: there are no {kind} devices")
    } else {
        format!(
            "no {kind} device named {name:?}; available: {}",
            available
                .iter()
                .map(|n| format!("{n:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

impl<D: AudioDevices> DeviceBackend<D> {
    /// Checks the set-up before anything is played: the three devices exist, the mic is not
    /// HardMute's own, and HardMute is hard-muted.
    pub fn new(devices: D, setup: DeviceSetup, mut hard_muted: MuteProbe) -> Result<Self, String> {
        if setup.mic == setup.hardmute_mic {
            return Err(format!(
                "--mic must be the loopback input feeding hardmuted, not {:?} itself",
                setup.hardmute_mic
            ));
        }
        let outputs = devices.outputs()?;
        if !outputs.contains(&setup.play_to) {
            return Err(missing("output", &setup.play_to, &outputs));
        }
        let inputs = devices.inputs()?;
        for name in [&setup.mic, &setup.hardmute_mic] {
            if !inputs.contains(name) {
                let mut msg = missing("input", name, &inputs);
                if *name == setup.hardmute_mic {
                    msg.push_str(" (is the HardMute driver installed?)");
                }
                return Err(msg);
            }
        }
        require_hard_muted(&mut hard_muted, "before the test")?;
        Ok(DeviceBackend {
            devices,
            setup,
            hard_muted,
            settle: SETTLE,
        })
    }

    /// Shorter waits (tests).
    pub fn with_settle(mut self, settle: Duration) -> Self {
        self.settle = settle;
        self
    }
}

fn require_hard_muted(probe: &mut MuteProbe, when: &str) -> Result<(), String> {
    match probe() {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!(
            "HardMute is not hard-muted {when}: run `hardmute mute` (condition (b) measures the \
             hard-muted microphone; refusing to run)"
        )),
        Err(e) => Err(format!(
            "cannot tell whether HardMute is hard-muted {when} ({e}); is hardmuted running?"
        )),
    }
}

impl<D: AudioDevices> Backend for DeviceBackend<D> {
    fn name(&self) -> String {
        // No '|': the name goes into the report's markdown table.
        format!(
            "device ({:?} -> {:?}, {:?})",
            self.setup.play_to, self.setup.mic, self.setup.hardmute_mic
        )
    }

    fn supports(&self, condition: Condition) -> bool {
        matches!(condition, Condition::AppLevelMute | Condition::HardMute)
    }

    fn capture_all(
        &mut self,
        condition: Condition,
        clips: &[Clip],
    ) -> Result<Vec<AppCapture>, String> {
        let input = match condition {
            Condition::AppLevelMute => self.setup.mic.clone(),
            Condition::HardMute => {
                require_hard_muted(&mut self.hard_muted, "before condition (b)")?;
                self.setup.hardmute_mic.clone()
            }
            other => return Err(format!("{other:?} needs the simulated backend")),
        };
        if let Some(c) = clips.iter().find(|c| c.rate != RATE) {
            return Err(format!("clip {} is at {} Hz, not {RATE}", c.id, c.rate));
        }
        let (playback, offsets) = concatenate_shuffled(clips);
        log::info!(
            "playing {:.0} s into {:?} and recording {input:?}",
            playback.len() as f64 / RATE as f64,
            self.setup.play_to
        );
        let epoch = Instant::now();
        let recording = self.devices.record(&input, epoch)?;
        std::thread::sleep(self.settle);
        let played = self.devices.play(&self.setup.play_to, &playback);
        std::thread::sleep(self.settle);
        let (samples, arrivals) = recording.finish()?;
        let started = played?.saturating_duration_since(epoch);
        if condition == Condition::HardMute {
            // A mute lifted during the run would make (b) measure a live mic.
            require_hard_muted(&mut self.hard_muted, "after condition (b)")?;
        }
        let audible = condition == Condition::AppLevelMute;
        let start = playback_start(&samples, &arrivals, started, audible);
        split_by_clip(&samples, &arrivals, start, &offsets, clips)
    }

    fn timing_is_deterministic(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activity::Activity;
    use std::cell::RefCell;
    use std::rc::Rc;

    const BLOCK: usize = 480;

    /// A loopback cable and HardMute, in memory: what is played to "Cable Out" comes out of
    /// "Cable In" `latency` samples later (an app-level mute hears it), and "HardMute
    /// Microphone" delivers exact zeros while `muted` (the driver's gate) and the cable's
    /// signal otherwise. Buffers of 10 ms arrive every 10 ms of a virtual clock.
    #[derive(Clone)]
    struct FakeDevices {
        inputs: Vec<String>,
        outputs: Vec<String>,
        latency: usize,
        muted: Rc<RefCell<bool>>,
        /// The signal on the cable, from the recorder's first sample on.
        cable: Rc<RefCell<Vec<f32>>>,
        recording: Rc<RefCell<Option<String>>>,
        played_at: Rc<RefCell<Option<Instant>>>,
        /// Drop the recording's tail beyond this many samples (a recorder that stopped early).
        truncate_to: Option<usize>,
    }

    impl FakeDevices {
        fn new() -> Self {
            FakeDevices {
                inputs: vec!["Cable In".into(), HARDMUTE_MIC.into(), "Built-in".into()],
                outputs: vec!["Cable Out".into(), "Speakers".into()],
                latency: 37,
                muted: Rc::new(RefCell::new(true)),
                cable: Rc::default(),
                recording: Rc::default(),
                played_at: Rc::default(),
                truncate_to: None,
            }
        }
        fn probe(&self) -> MuteProbe {
            let muted = self.muted.clone();
            Box::new(move || Ok(*muted.borrow()))
        }
    }

    struct FakeRecording {
        devices: FakeDevices,
        input: String,
        epoch: Instant,
    }

    impl AudioDevices for FakeDevices {
        fn inputs(&self) -> Result<Vec<String>, String> {
            Ok(self.inputs.clone())
        }
        fn outputs(&self) -> Result<Vec<String>, String> {
            Ok(self.outputs.clone())
        }
        fn record(&mut self, input: &str, epoch: Instant) -> Result<Box<dyn Recording>, String> {
            assert!(self.inputs.iter().any(|i| i == input), "recording {input}");
            *self.recording.borrow_mut() = Some(input.to_owned());
            self.cable.borrow_mut().clear();
            Ok(Box::new(FakeRecording {
                devices: self.clone(),
                input: input.to_owned(),
                epoch,
            }))
        }
        fn play(&mut self, output: &str, samples: &[f32]) -> Result<Instant, String> {
            assert_eq!(output, "Cable Out");
            // 300 ms of silence recorded before playback started (the settle time).
            let mut cable = self.cable.borrow_mut();
            cable.resize(30 * BLOCK + self.latency, 0.0);
            cable.extend_from_slice(samples);
            let end = cable.len() + 30 * BLOCK;
            cable.resize(end, 0.0);
            let now = Instant::now();
            *self.played_at.borrow_mut() = Some(now);
            Ok(now)
        }
    }

    impl Recording for FakeRecording {
        fn finish(self: Box<Self>) -> Result<(Vec<f32>, Vec<Arrival>), String> {
            let cable = self.devices.cable.borrow().clone();
            let silent = self.input == HARDMUTE_MIC && *self.devices.muted.borrow();
            let mut samples: Vec<f32> = if silent {
                vec![0.0; cable.len()]
            } else {
                cable
            };
            if let Some(n) = self.devices.truncate_to {
                samples.truncate(n);
            }
            // Block k arrives 10 ms after block k-1; the block holding the first played sample
            // (block 30, before the cable's latency) arrives when `play` started.
            let played = self.devices.played_at.borrow().expect("played");
            let base = played.duration_since(self.epoch);
            let arrivals = (0..samples.len() / BLOCK)
                .map(|k| Arrival {
                    at: (base + Duration::from_millis(10 * k as u64))
                        .saturating_sub(Duration::from_millis(300)),
                    first_sample: k * BLOCK,
                    samples: BLOCK,
                })
                .collect();
            Ok((samples, arrivals))
        }
    }

    fn setup() -> DeviceSetup {
        DeviceSetup {
            play_to: "Cable Out".into(),
            mic: "Cable In".into(),
            hardmute_mic: HARDMUTE_MIC.into(),
        }
    }

    fn clips() -> Vec<Clip> {
        (0..5)
            .map(|id| Clip {
                activity: Activity::ALL[id % Activity::ALL.len()],
                id,
                gain_db: 0.0,
                rate: RATE,
                samples: (0..RATE as usize / 10 + id * 100)
                    .map(|n| ((n * (id + 3)) % 97) as f32 / 97.0 + 0.01)
                    .collect(),
            })
            .collect()
    }

    fn backend(devices: &FakeDevices) -> DeviceBackend<FakeDevices> {
        DeviceBackend::new(devices.clone(), setup(), devices.probe())
            .unwrap()
            .with_settle(Duration::ZERO)
    }

    #[test]
    fn the_name_says_where_it_plays_and_records_and_fits_a_table_cell() {
        let d = FakeDevices::new();
        let name = backend(&d).name();
        assert_eq!(
            name,
            "device (\"Cable Out\" -> \"Cable In\", \"HardMute Microphone\")"
        );
        assert!(!name.contains('|'));
    }

    #[test]
    fn missing_devices_are_named_with_what_exists() {
        let d = FakeDevices::new();
        let with = |f: fn(&mut DeviceSetup)| {
            let mut s = setup();
            f(&mut s);
            DeviceBackend::new(d.clone(), s, d.probe()).err().unwrap()
        };
        let e = with(|s| s.play_to = "BlackHole 2ch".into());
        assert!(
            e.contains("no output device named \"BlackHole 2ch\""),
            "{e}"
        );
        assert!(e.contains("\"Cable Out\", \"Speakers\""), "{e}");
        let e = with(|s| s.mic = "VB-Cable".into());
        assert!(e.contains("no input device named \"VB-Cable\""), "{e}");
        assert!(e.contains("\"Built-in\""), "{e}");
        let mut no_driver = d.clone();
        no_driver.inputs.retain(|i| i != HARDMUTE_MIC);
        let e = DeviceBackend::new(no_driver, setup(), d.probe())
            .err()
            .unwrap();
        assert!(e.contains("HardMute driver installed"), "{e}");
        let e = with(|s| s.mic = HARDMUTE_MIC.into());
        assert!(e.contains("not \"HardMute Microphone\" itself"), "{e}");
    }

    #[test]
    fn refuses_to_run_unless_hard_muted() {
        let d = FakeDevices::new();
        *d.muted.borrow_mut() = false;
        let e = DeviceBackend::new(d.clone(), setup(), d.probe())
            .err()
            .unwrap();
        assert!(e.contains("not hard-muted before the test"), "{e}");
        let e = DeviceBackend::new(d.clone(), setup(), Box::new(|| Err("no daemon".into())))
            .err()
            .unwrap();
        assert!(
            e.contains("no daemon") && e.contains("hardmuted running"),
            "{e}"
        );
        // Muted at the start, unmuted before (b): refused, nothing recorded from a live mic.
        *d.muted.borrow_mut() = true;
        let mut b = backend(&d);
        *d.muted.borrow_mut() = false;
        let e = b.capture_all(Condition::HardMute, &clips()).unwrap_err();
        assert!(e.contains("before condition (b)"), "{e}");
        assert_eq!(*d.recording.borrow(), None);
    }

    #[test]
    fn a_mute_lifted_during_b_fails_the_run() {
        let d = FakeDevices::new();
        let muted = d.muted.clone();
        let calls = Rc::new(RefCell::new(0));
        let probe: MuteProbe = {
            let calls = calls.clone();
            Box::new(move || {
                *calls.borrow_mut() += 1;
                // muted for new() and the check before (b); unmuted by the check after it
                Ok(*calls.borrow() <= 2 && *muted.borrow())
            })
        };
        let mut b = DeviceBackend::new(d.clone(), setup(), probe)
            .unwrap()
            .with_settle(Duration::ZERO);
        let e = b.capture_all(Condition::HardMute, &clips()).unwrap_err();
        assert!(e.contains("after condition (b)"), "{e}");
    }

    #[test]
    fn app_level_mute_records_the_loopback_and_maps_each_clip_back() {
        let d = FakeDevices::new();
        let clips = clips();
        let caps = backend(&d)
            .capture_all(Condition::AppLevelMute, &clips)
            .unwrap();
        assert_eq!(d.recording.borrow().as_deref(), Some("Cable In"));
        assert_eq!(caps.len(), clips.len());
        for (cap, clip) in caps.iter().zip(&clips) {
            assert_eq!(cap.samples, clip.samples, "clip {}", clip.id);
            assert!(!cap.arrivals_ns.is_empty());
            assert_eq!(cap.arrivals_ns.len(), cap.frames.len());
            assert_eq!(cap.arrivals_ns[0], 0, "relative to the clip's first buffer");
            assert!(cap.arrivals_ns.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn hard_mute_records_hardmute_microphone() {
        let d = FakeDevices::new();
        let clips = clips();
        let caps = backend(&d)
            .capture_all(Condition::HardMute, &clips)
            .unwrap();
        assert_eq!(d.recording.borrow().as_deref(), Some(HARDMUTE_MIC));
        for (cap, clip) in caps.iter().zip(&clips) {
            assert_eq!(cap.samples.len(), clip.samples.len());
            assert!(cap.samples.iter().all(|s| *s == 0.0));
        }
        // The same fake unmuted would pass the cable's signal: the zeros above are the gate's.
        *d.muted.borrow_mut() = false;
        // (a probe that lies "muted", so only the fake's gate differs)
        let mut b = DeviceBackend::new(d.clone(), setup(), Box::new(|| Ok(true)))
            .unwrap()
            .with_settle(Duration::ZERO);
        let caps = b.capture_all(Condition::HardMute, &clips).unwrap();
        assert!(caps.iter().any(|c| c.samples.iter().any(|s| *s != 0.0)));
    }

    #[test]
    fn controls_stay_simulated_and_a_short_recording_is_an_error() {
        let d = FakeDevices::new();
        let mut b = backend(&d);
        assert!(!b.supports(Condition::Attenuate60dB));
        assert!(b
            .capture_all(Condition::PreGateProcessing, &clips())
            .unwrap_err()
            .contains("simulated"));
        let mut early = d.clone();
        early.truncate_to = Some(RATE as usize / 2);
        let mut b = backend(&early);
        let e = b
            .capture_all(Condition::AppLevelMute, &clips())
            .unwrap_err();
        assert!(e.contains("recording too short"), "{e}");
    }

    /// The whole leak test on the device backend (with the fake cable and HardMute; (c), (d)
    /// simulated): passes with the gate closed, and reports a leak when "HardMute Microphone"
    /// passes the room through while the daemon claims it is muted.
    #[test]
    fn the_full_run_passes_with_a_closed_gate_and_catches_an_open_one() {
        let mut cfg = crate::RunConfig::short();
        cfg.clips_per_class = 4;
        cfg.clip_secs = 3.0;
        cfg.permutations = 199;
        let d = FakeDevices::new();
        let mut b = backend(&d);
        let outcome = crate::run(&cfg, &mut b).unwrap();
        assert_eq!(outcome.verdict(), crate::Verdict::Pass);
        let leaky = FakeDevices::new();
        *leaky.muted.borrow_mut() = false;
        let mut b = DeviceBackend::new(leaky.clone(), setup(), Box::new(|| Ok(true)))
            .unwrap()
            .with_settle(Duration::ZERO);
        let outcome = crate::run(&cfg, &mut b).unwrap();
        assert_eq!(outcome.verdict(), crate::Verdict::Leak);
    }
}
