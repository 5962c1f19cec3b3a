//! [`AudioDevices`] over cpal: CoreAudio on macOS, WASAPI (shared mode) on Windows. Only moves
//! samples; every decision is in the parent module. Type-checked for the Apple and Windows targets
//! on Linux by `cargo xtask cross-check crates`; it runs only on a Mac or PC.
//!
//! The stream callbacks allocate nothing and take no lock: the recorder pushes mono samples and
//! (arrival ns, frames) pairs into preallocated rings that a drain thread empties; the player
//! reads a shared slice at an atomic position.

use super::{AudioDevices, Recording, RATE};
use crate::backend::Arrival;
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{SampleFormat, StreamConfig, SupportedStreamConfigRange};
use ringbuf::traits::{Consumer, Producer, Split};
use ringbuf::HeapRb;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct CpalDevices {
    host: cpal::Host,
}

impl CpalDevices {
    pub fn new() -> Self {
        CpalDevices {
            host: cpal::default_host(),
        }
    }
}

impl Default for CpalDevices {
    fn default() -> Self {
        Self::new()
    }
}

fn name_of(device: &cpal::Device) -> Option<String> {
    device.description().ok().map(|d| d.name().to_owned())
}

fn err(what: &str, e: impl std::fmt::Display) -> String {
    format!("{what}: {e}")
}

/// A config of `device` that carries f32 at [`RATE`] (with `channels` preferred).
fn f32_config(
    configs: impl Iterator<Item = SupportedStreamConfigRange>,
    name: &str,
) -> Result<StreamConfig, String> {
    let fits =
        |c: &SupportedStreamConfigRange| c.min_sample_rate() <= RATE && RATE <= c.max_sample_rate();
    let config = configs
        .filter(|c| c.sample_format() == SampleFormat::F32 && fits(c))
        .min_by_key(|c| c.channels())
        .ok_or_else(|| {
            format!(
                "{name:?} offers no 32-bit float stream at {RATE} Hz; set the device to {} kHz \
                 (Audio MIDI Setup on macOS, Sound settings on Windows)",
                RATE / 1000
            )
        })?;
    Ok(StreamConfig {
        channels: config.channels(),
        sample_rate: RATE,
        buffer_size: cpal::BufferSize::Default,
    })
}

impl CpalDevices {
    fn find(&self, input: bool, name: &str) -> Result<cpal::Device, String> {
        let devices = if input {
            self.host.input_devices()
        } else {
            self.host.output_devices()
        }
        .map_err(|e| err("listing devices", e))?;
        let mut devices = devices;
        devices
            .find(|d| name_of(d).as_deref() == Some(name))
            .ok_or_else(|| format!("device {name:?} disappeared"))
    }
}

/// The recorder's rings: 20 s of samples and 20 s of 1 ms buffers (the drain thread empties them
/// every 20 ms, so they never fill unless the machine stalls; a full ring is counted).
const RING_SECS: usize = 20;

struct CpalRecording {
    stream: cpal::Stream,
    stop: Arc<AtomicBool>,
    dropped: Arc<AtomicUsize>,
    drain: JoinHandle<(Vec<f32>, Vec<Arrival>)>,
}

impl Recording for CpalRecording {
    fn finish(self: Box<Self>) -> Result<(Vec<f32>, Vec<Arrival>), String> {
        let CpalRecording {
            stream,
            stop,
            dropped,
            drain,
        } = *self;
        stream
            .pause()
            .map_err(|e| err("stopping the recording", e))?;
        drop(stream);
        stop.store(true, Ordering::Release);
        let (samples, arrivals) = drain.join().map_err(|_| "the drain thread panicked")?;
        let lost = dropped.load(Ordering::Acquire);
        if lost > 0 {
            return Err(format!(
                "the recorder lost {lost} samples (machine too busy); run again"
            ));
        }
        Ok((samples, arrivals))
    }
}

impl AudioDevices for CpalDevices {
    fn inputs(&self) -> Result<Vec<String>, String> {
        let devices = self
            .host
            .input_devices()
            .map_err(|e| err("listing inputs", e))?;
        Ok(devices.filter_map(|d| name_of(&d)).collect())
    }

    fn outputs(&self) -> Result<Vec<String>, String> {
        let devices = self
            .host
            .output_devices()
            .map_err(|e| err("listing outputs", e))?;
        Ok(devices.filter_map(|d| name_of(&d)).collect())
    }

    fn record(&mut self, input: &str, epoch: Instant) -> Result<Box<dyn Recording>, String> {
        let device = self.find(true, input)?;
        let configs = device
            .supported_input_configs()
            .map_err(|e| err("reading the input formats", e))?;
        let config = f32_config(configs, input)?;
        let channels = usize::from(config.channels.max(1));
        let (mut samples_in, mut samples_out) =
            HeapRb::<f32>::new(RING_SECS * RATE as usize).split();
        let (mut arrivals_in, mut arrivals_out) =
            HeapRb::<(u64, u32)>::new(RING_SECS * 1000).split();
        let dropped = Arc::new(AtomicUsize::new(0));
        let stream = {
            let dropped = dropped.clone();
            device
                .build_input_stream::<f32, _, _>(
                    config,
                    move |data: &[f32], _: &cpal::InputCallbackInfo| {
                        let at = epoch.elapsed().as_nanos() as u64;
                        let mut frames = 0u32;
                        let mut lost = 0usize;
                        for frame in data.chunks_exact(channels) {
                            let mono = frame.iter().sum::<f32>() / channels as f32;
                            if samples_in.try_push(mono).is_err() {
                                lost += 1;
                            }
                            frames += 1;
                        }
                        if arrivals_in.try_push((at, frames)).is_err() {
                            lost += 1;
                        }
                        if lost > 0 {
                            dropped.fetch_add(lost, Ordering::Relaxed);
                        }
                    },
                    |e| log::warn!("recording: {e}"),
                    None,
                )
                .map_err(|e| err(&format!("opening {input:?}"), e))?
        };
        let stop = Arc::new(AtomicBool::new(false));
        let drain = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut samples = Vec::new();
                let mut arrivals = Vec::new();
                loop {
                    let last = stop.load(Ordering::Acquire);
                    samples.extend(samples_out.pop_iter());
                    for (at, frames) in arrivals_out.pop_iter() {
                        let first_sample = arrivals
                            .last()
                            .map_or(0, |a: &Arrival| a.first_sample + a.samples);
                        arrivals.push(Arrival {
                            at: Duration::from_nanos(at),
                            first_sample,
                            samples: frames as usize,
                        });
                    }
                    if last {
                        return (samples, arrivals);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        stream
            .play()
            .map_err(|e| err(&format!("starting {input:?}"), e))?;
        Ok(Box::new(CpalRecording {
            stream,
            stop,
            dropped,
            drain,
        }))
    }

    fn play(&mut self, output: &str, samples: &[f32]) -> Result<Instant, String> {
        let device = self.find(false, output)?;
        let configs = device
            .supported_output_configs()
            .map_err(|e| err("reading the output formats", e))?;
        let config = f32_config(configs, output)?;
        let channels = usize::from(config.channels.max(1));
        let shared: Arc<[f32]> = samples.into();
        let position = Arc::new(AtomicUsize::new(0));
        let t0 = Instant::now();
        // ns after t0 of the first callback; u64::MAX until then.
        let first_callback = Arc::new(AtomicU64::new(u64::MAX));
        let stream = {
            let (shared, position, first_callback) =
                (shared.clone(), position.clone(), first_callback.clone());
            device
                .build_output_stream::<f32, _, _>(
                    config,
                    move |data: &mut [f32], _: &cpal::OutputCallbackInfo| {
                        let _ = first_callback.compare_exchange(
                            u64::MAX,
                            t0.elapsed().as_nanos() as u64,
                            Ordering::AcqRel,
                            Ordering::Relaxed,
                        );
                        let mut pos = position.load(Ordering::Relaxed);
                        for frame in data.chunks_exact_mut(channels) {
                            let s = shared.get(pos).copied().unwrap_or(0.0);
                            frame.fill(s);
                            pos += 1;
                        }
                        position.store(pos, Ordering::Release);
                    },
                    |e| log::warn!("playback: {e}"),
                    None,
                )
                .map_err(|e| err(&format!("opening {output:?}"), e))?
        };
        stream
            .play()
            .map_err(|e| err(&format!("starting {output:?}"), e))?;
        let deadline = t0 + Duration::from_secs_f64(samples.len() as f64 / RATE as f64 * 1.5 + 5.0);
        while position.load(Ordering::Acquire) < samples.len() {
            if Instant::now() > deadline {
                return Err(format!("{output:?} stopped consuming samples"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // Let the device play out its last buffer.
        std::thread::sleep(Duration::from_millis(200));
        drop(stream);
        let first = first_callback.load(Ordering::Acquire);
        Ok(t0 + Duration::from_nanos(if first == u64::MAX { 0 } else { first }))
    }
}
