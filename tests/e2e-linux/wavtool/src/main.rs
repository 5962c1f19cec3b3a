//! hm-wav: the e2e harness's signal generator and WAV analyser.
//!
//!   (the signal comes from hm-play, see play.rs and signal.rs)
//!   hm-wav analyse FILE [options]   prints one line of facts; exit 1 if an expectation fails
//!     --skip S            ignore the first S seconds
//!     --last S            analyse only the last S seconds
//!     --min-seconds S     fail if less is analysed (default 1)
//!     --expect-zero       every sample of every channel exactly 0
//!     --expect-signal     channel 0 is the generator's noise: aligned by cross-correlation,
//!                         RMS within --tol dB (default 0.5) of the reference over the same
//!                         samples, no zero run longer than --max-zero-run frames (default 8)
//!     --segments          channel 0 is zero runs and noise runs only: every noise run aligned
//!                         and equal to the reference (a fade-in allowed at its start), no
//!                         marker, no stale/looped/shifted sample
//!     --expect-marker     the control case: a marker is present
//!     --no-marker         no marker sample anywhere (a run of >= 8 samples with |x| > 0.6)
//!     --marker-ok         with --segments: marker runs separate segments like zeros (control)
//!     --allow-mismatch    with --segments: report, do not fail on, unaligned samples (control)
//!     --max-offsets N     with --segments: at most N distinct alignments (1 = nothing dropped)
//!     --min-segments N    with --segments: at least N noise runs
//!     --max-segments N    with --segments: at most N noise runs
//!     --min-zero-run N    the longest zero run on channel 0 is at least N frames
//!   hm-wav latency FILE   stereo: clicks on FL (direct) vs FR (through HardMute): offset in frames

#[path = "signal.rs"]
mod signal;
use signal::*;

struct Wav {
    channels: usize,
    rate: usize,
    samples: Vec<f32>, // interleaved, scaled to [-1, 1]
    bits: u16,
}

fn read_wav(path: &str) -> Result<Wav, String> {
    let raw = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    if raw.len() < 12 || &raw[..4] != b"RIFF" || &raw[8..12] != b"WAVE" {
        return Err(format!("{path}: not RIFF/WAVE"));
    }
    let u16le = |b: &[u8]| u16::from_le_bytes([b[0], b[1]]);
    let u32le = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let mut pos = 12;
    let mut fmt: Option<(u16, usize, usize, u16)> = None;
    while pos + 8 <= raw.len() {
        let id = &raw[pos..pos + 4];
        let size = u32le(&raw[pos + 4..pos + 8]) as usize;
        let body_start = pos + 8;
        if id == b"fmt " {
            let b = &raw[body_start..];
            let mut tag = u16le(&b[0..2]);
            let bits = u16le(&b[14..16]);
            if tag == 0xFFFE && b.len() >= 26 {
                tag = u16le(&b[24..26]);
            }
            fmt = Some((
                tag,
                u16le(&b[2..4]) as usize,
                u32le(&b[4..8]) as usize,
                bits,
            ));
        } else if id == b"data" {
            // A recorder stopped by a signal may not have fixed the size: read to the end.
            let end = if size == 0 || body_start + size > raw.len() || size == u32::MAX as usize {
                raw.len()
            } else {
                body_start + size
            };
            let end = if end < raw.len() && raw.len() - end > 4096 {
                raw.len()
            } else {
                end
            };
            let (tag, channels, rate, bits) = fmt.ok_or("data before fmt")?;
            let data = &raw[body_start..end];
            let samples: Vec<f32> = match (tag, bits) {
                (3, 32) => data
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
                (1, 16) => data
                    .chunks_exact(2)
                    .map(|c| i16::from_le_bytes([c[0], c[1]]) as f32 / 32768.0)
                    .collect(),
                (1, 32) => data
                    .chunks_exact(4)
                    .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32 / 2147483648.0)
                    .collect(),
                _ => return Err(format!("{path}: unsupported format tag={tag} bits={bits}")),
            };
            return Ok(Wav {
                channels: channels.max(1),
                rate,
                samples,
                bits,
            });
        }
        pos = body_start + size + (size & 1);
    }
    Err(format!("{path}: no data chunk"))
}

fn opt<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

fn db(x: f64) -> f64 {
    if x > 0.0 {
        20.0 * x.log10()
    } else {
        f64::NEG_INFINITY
    }
}

fn rms(v: impl Iterator<Item = f32>) -> f64 {
    let (mut s, mut n) = (0.0f64, 0usize);
    for x in v {
        s += (x as f64) * (x as f64);
        n += 1;
    }
    if n == 0 {
        0.0
    } else {
        (s / n as f64).sqrt()
    }
}

/// Offset o such that rec[i] ~ reference[(i + o) % PERIOD], by normalised cross-correlation.
fn align(rec: &[f32], reference: &[f32], hints: &[usize]) -> Option<(usize, f64)> {
    let w = rec.len().min(2048);
    let rec = &rec[..w];
    let energy: f64 = rec.iter().map(|&x| (x as f64).powi(2)).sum();
    if energy == 0.0 {
        return None;
    }
    let score = |o: usize| -> f64 {
        let (mut c, mut e) = (0.0f64, 0.0f64);
        for (i, &x) in rec.iter().enumerate() {
            let r = reference[(i + o) % PERIOD] as f64;
            c += x as f64 * r;
            e += r * r;
        }
        c / (energy.sqrt() * e.sqrt()).max(1e-30)
    };
    for &h in hints {
        let s = score(h);
        if s > 0.95 {
            return Some((h, s));
        }
    }
    let mut best = (0usize, f64::MIN);
    for o in 0..PERIOD {
        let s = score(o);
        if s > best.1 {
            best = (o, s);
        }
    }
    Some(best)
}

fn analyse(args: &[String]) -> bool {
    let Some(path) = args.first() else {
        eprintln!("usage: hm-wav analyse FILE [options]");
        return false;
    };
    let wav = match read_wav(path) {
        Ok(w) => w,
        Err(e) => {
            println!("FAIL {e}");
            return false;
        }
    };

    let num = |f: &str, d: f64| opt(args, f).and_then(|v| v.parse().ok()).unwrap_or(d);
    let has = |f: &str| args.iter().any(|a| a == f);
    let ch = wav.channels;
    let skip_frames = (num("--skip", 0.0) * wav.rate as f64) as usize;
    let all = wav.samples.get(skip_frames * ch..).unwrap_or(&[]);
    let all = match opt(args, "--last").and_then(|v| v.parse::<f64>().ok()) {
        Some(last) => {
            let keep = ((last * wav.rate as f64) as usize * ch).min(all.len());
            &all[all.len() - keep..]
        }
        None => all,
    };
    let frames = all.len() / ch;
    let secs = frames as f64 / wav.rate as f64;
    let ch0: Vec<f32> = all.iter().step_by(ch).copied().collect();
    let nonzero = all.iter().filter(|&&x| x != 0.0).count();
    // A marker sample is part of a run of at least MARKER_RUN loud samples on channel 0 (the
    // marker is a square wave, 24 samples per half period); resampled noise can overshoot
    // the threshold for a sample or two, never for a run.
    let loud: Vec<bool> = ch0.iter().map(|x| x.abs() > MARKER_THRESHOLD).collect();
    let mut is_marker = vec![false; ch0.len()];
    let mut i = 0;
    while i < loud.len() {
        if loud[i] {
            let start = i;
            while i < loud.len() && loud[i] {
                i += 1;
            }
            if i - start >= MARKER_RUN {
                is_marker[start..i].iter_mut().for_each(|m| *m = true);
            }
        } else {
            i += 1;
        }
    }
    let markers = is_marker.iter().filter(|&&m| m).count();
    let marker_ok = has("--marker-ok");
    let quiet = |k: usize| ch0[k] == 0.0 || (marker_ok && is_marker[k]);
    let mut longest_zero = 0usize;
    let mut run = 0usize;
    for &x in &ch0 {
        run = if x == 0.0 { run + 1 } else { 0 };
        longest_zero = longest_zero.max(run);
    }
    let mut ok = true;
    let mut facts = format!(
        "{path}: {ch}ch {}Hz {}bit {secs:.3}s rms={:.2}dBFS nonzero={nonzero}/{} markers={markers} longest_zero_run={longest_zero}",
        wav.rate,
        wav.bits,
        db(rms(all.iter().copied())),
        all.len()
    );
    let mut fail = |why: String, facts: &mut String| {
        facts.push_str(&format!("\n  FAIL: {why}"));
        ok = false;
    };
    if secs < num("--min-seconds", 1.0) {
        fail(format!("only {secs:.3}s analysed"), &mut facts);
    }
    if let Some(min) = opt(args, "--min-zero-run").and_then(|v| v.parse::<usize>().ok()) {
        if longest_zero < min {
            fail(
                format!("longest zero run {longest_zero} frames (< {min})"),
                &mut facts,
            );
        }
    }
    if has("--expect-zero") && nonzero > 0 {
        fail(format!("{nonzero} non-zero samples"), &mut facts);
    }
    if has("--no-marker") && markers > 0 {
        fail(
            format!("{markers} marker samples reached the recording"),
            &mut facts,
        );
    }
    if has("--expect-marker") && markers == 0 {
        fail(
            "no marker in the control recording: the marker detector is blind".into(),
            &mut facts,
        );
    }
    let reference = reference();
    if has("--expect-signal") {
        if wav.rate != RATE {
            fail(
                "--expect-signal needs a 48 kHz recording".into(),
                &mut facts,
            );
        } else {
            let tol = num("--tol", 0.5);
            let max_run = num("--max-zero-run", 8.0) as usize;
            match align(&ch0, &reference, &[]) {
                None => fail("silent: nothing to align".into(), &mut facts),
                Some((o, score)) => {
                    let ref_rms = rms((0..ch0.len()).map(|i| reference[(i + o) % PERIOD]));
                    let rec_rms = rms(ch0.iter().copied());
                    let diff = db(rec_rms) - db(ref_rms);
                    facts.push_str(&format!(
                        " | aligned offset={o} corr={score:.5} rms_diff={diff:+.3}dB"
                    ));
                    if score < 0.99 {
                        fail(
                            format!("correlation {score:.4} < 0.99: not the fake mic's signal"),
                            &mut facts,
                        );
                    }
                    if diff.abs() > tol {
                        fail(format!("RMS differs by {diff:.3} dB (> {tol})"), &mut facts);
                    }
                    if longest_zero > max_run {
                        fail(
                            format!("dropout: {longest_zero} zero frames (> {max_run})"),
                            &mut facts,
                        );
                    }
                }
            }
        }
    }
    if has("--segments") {
        if wav.rate != RATE {
            fail("--segments needs a 48 kHz recording".into(), &mut facts);
        } else {
            let (mut segs, mut bad, mut offsets) = (0usize, 0usize, Vec::<usize>::new());
            let mut i = 0;
            while i < ch0.len() {
                if quiet(i) {
                    i += 1;
                    continue;
                }
                let start = i;
                // A segment ends at a long zero run (a mute); single zero samples inside noise
                // are legitimate values.
                let mut end = i;
                let mut zeros = 0;
                while end < ch0.len() && zeros < 64 {
                    zeros = if quiet(end) { zeros + 1 } else { 0 };
                    end += 1;
                }
                let end = end - zeros;
                let seg = &ch0[start..end];
                segs += 1;
                if seg.len() < 32 {
                    // Too short to align honestly; it must at least not be a marker.
                    if seg.iter().any(|x| x.abs() > MARKER_THRESHOLD) {
                        bad += seg.len();
                    }
                    i = end.max(start + 1);
                    continue;
                }
                // Offsets are kept absolute (recording sample index -> reference index), so
                // one offset for the whole file means nothing was dropped or repeated. Where the
                // signal jumps inside a segment (a buffer dropped or repeated somewhere in the
                // graph), the rest is aligned again: a glitch costs one more offset, and only
                // samples that are not the fake mic's signal at all count as mismatched.
                let mut pos = 0; // within seg
                let mut realigned = 0;
                while pos < seg.len() {
                    let part = &seg[pos..];
                    let abs = start + pos;
                    let hints: Vec<usize> = offsets.iter().map(|&h| (h + abs) % PERIOD).collect();
                    let Some((rel, score)) = align(part, &reference, &hints).filter(|a| a.1 > 0.9)
                    else {
                        bad += part.len();
                        break;
                    };
                    let o = (rel + PERIOD - abs % PERIOD) % PERIOD;
                    if !offsets.contains(&o) {
                        offsets.push(o);
                    }
                    let mut jump = None;
                    for (k, &x) in part.iter().enumerate() {
                        let r = reference[(k + rel) % PERIOD];
                        let exact = (x - r).abs() <= 1e-6;
                        let fading = pos == 0 && k < FADE_ALLOWANCE && r != 0.0 && {
                            let g = x / r;
                            (-1e-6..=1.0 + 1e-6).contains(&g)
                        };
                        if !(exact || fading || x == 0.0) {
                            jump = Some(k);
                            break;
                        }
                    }
                    if std::env::var_os("HM_WAV_DEBUG").is_some() {
                        eprintln!(
                            "segment start={abs} len={} offset={o} score={score:.4} jump={jump:?}",
                            part.len()
                        );
                    }
                    match jump {
                        // A jump right at the start of a realigned part would loop forever.
                        Some(0) => {
                            bad += part.len();
                            break;
                        }
                        Some(k) => {
                            pos += k;
                            realigned += 1;
                            if realigned > 1000 {
                                bad += seg.len() - pos;
                                break;
                            }
                        }
                        None => break,
                    }
                }
                i = end.max(start + 1);
            }
            facts.push_str(&format!(
                " | segments={segs} offsets={offsets:?} offsets_count={} mismatched_samples={bad}",
                offsets.len()
            ));
            if bad > 0 && !has("--allow-mismatch") {
                fail(
                    format!("{bad} samples are neither zero nor the aligned fake-mic signal"),
                    &mut facts,
                );
            }
            if let Some(max) = opt(args, "--max-offsets").and_then(|v| v.parse::<usize>().ok()) {
                if offsets.len() > max {
                    fail(
                        format!(
                            "{} different alignments (> {max}): samples were dropped or repeated",
                            offsets.len()
                        ),
                        &mut facts,
                    );
                }
            }
            if let Some(max) = opt(args, "--max-segments").and_then(|v| v.parse::<usize>().ok()) {
                if segs > max {
                    fail(
                        format!("{segs} non-silent runs (> {max}): audio where only zeros belong"),
                        &mut facts,
                    );
                }
            }
            if let Some(min) = opt(args, "--min-segments").and_then(|v| v.parse::<usize>().ok()) {
                if segs < min {
                    fail(
                        format!("only {segs} unmuted segments (< {min})"),
                        &mut facts,
                    );
                }
            }
        }
    }
    println!("{facts}");
    ok
}

fn latency(args: &[String]) -> bool {
    let Some(path) = args.first() else {
        return false;
    };
    let wav = match read_wav(path) {
        Ok(w) if w.channels == 2 => w,
        Ok(_) => {
            println!("FAIL {path}: need a stereo recording");
            return false;
        }
        Err(e) => {
            println!("FAIL {e}");
            return false;
        }
    };
    let clicks = |c: usize| -> Vec<usize> {
        let mut v = Vec::new();
        let mut last = None::<usize>;
        for (i, f) in wav.samples.chunks_exact(2).enumerate() {
            if f[c].abs() > 0.5 && last.is_none_or(|l| i > l + 1000) {
                v.push(i);
                last = Some(i);
            }
        }
        v
    };
    let (direct, through) = (clicks(0), clicks(1));
    let mut offsets = Vec::new();
    for &d in &direct {
        if let Some(&t) = through.iter().find(|&&t| t + 100 >= d && t < d + 8192) {
            offsets.push(t as i64 - d as i64);
        }
    }
    offsets.sort_unstable();
    let uniq: Vec<i64> = {
        let mut u = offsets.clone();
        u.dedup();
        u
    };
    println!(
        "clicks direct={} through={} matched={} offsets_frames={:?}",
        direct.len(),
        through.len(),
        offsets.len(),
        uniq
    );
    offsets.len() >= 3
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ok = match args.first().map(String::as_str) {
        Some("analyse") => analyse(&args[1..]),
        Some("latency") => latency(&args[1..]),
        _ => {
            eprintln!("usage: hm-wav analyse|latency ...");
            false
        }
    };
    std::process::exit(if ok { 0 } else { 1 });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_wav(name: &str, samples: &[f32]) -> String {
        let path =
            std::env::temp_dir().join(format!("hm-wav-test-{}-{name}.wav", std::process::id()));
        let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        let mut w = Vec::new();
        w.extend_from_slice(b"RIFF");
        w.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
        w.extend_from_slice(b"WAVEfmt ");
        w.extend_from_slice(&16u32.to_le_bytes());
        w.extend_from_slice(&3u16.to_le_bytes()); // IEEE float
        w.extend_from_slice(&1u16.to_le_bytes());
        w.extend_from_slice(&(RATE as u32).to_le_bytes());
        w.extend_from_slice(&(RATE as u32 * 4).to_le_bytes());
        w.extend_from_slice(&4u16.to_le_bytes());
        w.extend_from_slice(&32u16.to_le_bytes());
        w.extend_from_slice(b"data");
        w.extend_from_slice(&(data.len() as u32).to_le_bytes());
        w.extend_from_slice(&data);
        std::fs::write(&path, w).unwrap();
        path.to_string_lossy().into_owned()
    }

    fn run(path: &str, opts: &[&str]) -> bool {
        let mut args = vec![path.to_string()];
        args.extend(opts.iter().map(|s| s.to_string()));
        analyse(&args)
    }

    /// 2 s: signal, 0.5 s muted (zeros), signal again, all at one alignment.
    fn recording() -> Vec<f32> {
        let r = reference();
        (0..2 * RATE)
            .map(|i| {
                if (RATE / 2..RATE).contains(&i) {
                    0.0
                } else {
                    r[(i + 123) % PERIOD]
                }
            })
            .collect()
    }

    #[test]
    fn a_clean_muted_gap_passes() {
        let p = write_wav("clean", &recording());
        assert!(run(
            &p,
            &[
                "--segments",
                "--max-offsets",
                "1",
                "--max-segments",
                "2",
                "--min-zero-run",
                "20000",
                "--no-marker"
            ]
        ));
    }

    #[test]
    fn a_stale_buffer_in_the_gap_is_caught() {
        let mut rec = recording();
        let stale: Vec<f32> = rec[1000..2024].to_vec(); // an old quantum replayed while muted
        rec[30_000..31_024].copy_from_slice(&stale);
        let p = write_wav("stale", &rec);
        assert!(
            !run(&p, &["--segments", "--max-segments", "2"]),
            "a replayed buffer is one segment too many"
        );
        assert!(
            !run(&p, &["--segments", "--max-offsets", "1"]),
            "and it sits at another alignment"
        );
    }

    #[test]
    fn leaked_non_signal_audio_and_markers_are_caught() {
        let mut rec = recording();
        for (k, s) in rec[30_000..30_100].iter_mut().enumerate() {
            *s = if k % 2 == 0 { 0.05 } else { -0.05 };
        }
        let p = write_wav("leak", &rec);
        assert!(!run(&p, &["--segments"]));
        let mut rec = recording();
        for (k, s) in rec[30_000..31_000].iter_mut().enumerate() {
            *s = if (k / 24) % 2 == 0 {
                MARKER_LEVEL
            } else {
                -MARKER_LEVEL
            };
        }
        let p = write_wav("marker", &rec);
        assert!(!run(&p, &["--no-marker"]));
        assert!(run(&p, &["--expect-marker"]));
    }

    #[test]
    fn a_dropped_buffer_costs_one_alignment_but_no_mismatch() {
        let mut rec = recording();
        rec.drain(60_000..61_024); // a quantum lost while unmuted
        let p = write_wav("drop", &rec);
        assert!(run(&p, &["--segments", "--max-offsets", "2"]));
        assert!(!run(&p, &["--segments", "--max-offsets", "1"]));
    }

    #[test]
    fn zeros_and_signal_levels() {
        let p = write_wav("zeros", &vec![0.0; RATE * 2]);
        assert!(run(&p, &["--expect-zero"]));
        let r = reference();
        let p = write_wav(
            "signal",
            &(0..RATE * 2).map(|i| r[i % PERIOD]).collect::<Vec<_>>(),
        );
        assert!(!run(&p, &["--expect-zero"]));
        assert!(run(&p, &["--expect-signal"]));
        let quiet: Vec<f32> = (0..RATE * 2).map(|i| r[i % PERIOD] * 0.5).collect(); // -6 dB
        let p = write_wav("quiet", &quiet);
        assert!(
            !run(&p, &["--expect-signal"]),
            "6 dB too quiet is outside 0.5 dB"
        );
    }
}
