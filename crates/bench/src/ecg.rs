//! ECG analysis time, in this process (no server): a seeded synthetic 30-minute two-lead
//! 360 Hz record (carehub-ecg's `synth`, sinus rhythm with 3 % PVCs and 1 % PACs, noise, baseline wander and
//! mains), written to WFDB format 212 in memory, then timed over several runs: decoding one lead
//! plus analysing it, and the analysis alone. The same for the AAMI EC13 test waveform 3a
//! (720 Hz, one minute of CSV text) shipped with carehub-ecg's tests, and for 30 minutes of
//! pure noise at 360 Hz (the worst case: the detector finds candidates everywhere).
//!
//! Part of `carehub-bench`; run with `--only ecg` (needs no server binary when alone).

use std::time::{Duration, Instant};

use anyhow::Context as _;
use carehub_ecg::synth::{self, Powerline, SynthConfig, SynthRhythm};
use carehub_ecg::wfdb::{self, SignalFormat};
use carehub_ecg::{Rhythm, analyze, csv};

/// Timed runs per measure (after one warm-up run).
pub const RUNS: usize = 20;

/// The real waveform measured beside the synthetic record.
const AAMI_3A: &str = include_str!("../../ecg/tests/data/aami3a.txt");

/// One timed row.
#[derive(Debug, Clone)]
pub struct Timing {
    pub record: String,
    pub what: &'static str,
    pub samples: usize,
    pub beats: usize,
    pub rhythm: Rhythm,
    pub runs: Vec<Duration>,
}

pub fn describe() -> String {
    format!(
        "## ECG analysis time\n\nOne lead analysed by {} in this process, {RUNS} \
         timed runs after a warm-up; the 30-minute record is synthetic (seeded, two leads, \
         360 Hz, WFDB format 212 in memory).",
        carehub_ecg::ALGORITHM_VERSION
    )
}

pub fn run() -> anyhow::Result<Vec<Timing>> {
    let config = SynthConfig {
        seed: 2026,
        sampling_rate_hz: 360.0,
        duration_secs: 1800.0,
        heart_rate_bpm: 72.0,
        rhythm: SynthRhythm::Sinus { variability: 0.04 },
        pvc_probability: 0.03,
        pac_probability: 0.01,
        noise_mv: 0.05,
        baseline_wander_mv: 0.3,
        powerline: Some(Powerline {
            frequency_hz: 60.0,
            amplitude_mv: 0.03,
        }),
        leads: 2,
    };
    let record = synth::generate(&config).context("synthesising the record")?;
    let (header, dat) = record.to_wfdb("synth30", SignalFormat::Format212);
    let name = format!(
        "synthetic 30 min, 2 leads, 360 Hz, WFDB 212 ({} KiB)",
        dat.len() / 1024
    );

    let decode_and_analyse = || -> anyhow::Result<(usize, usize, Rhythm)> {
        let lead = wfdb::read(&header, &dat, 0)?;
        let analysis = analyze(&lead.samples, lead.sampling_rate_hz)?;
        Ok((lead.samples.len(), analysis.beats.len(), analysis.rhythm))
    };
    let mut rows = vec![time(&name, "decode + analyse", decode_and_analyse)?];
    let lead = wfdb::read(&header, &dat, 0)?;
    rows.push(time(&name, "analyse", || {
        let analysis = analyze(&lead.samples, lead.sampling_rate_hz)?;
        Ok((lead.samples.len(), analysis.beats.len(), analysis.rhythm))
    })?);

    let aami = "AAMI EC13 3a (real test waveform), 720 Hz, 60 s CSV";
    rows.push(time(aami, "parse CSV + analyse", || {
        let lead = csv::read(AAMI_3A, Some(720.0))?;
        let analysis = analyze(&lead.samples, lead.sampling_rate_hz)?;
        Ok((lead.samples.len(), analysis.beats.len(), analysis.rhythm))
    })?);
    let lead = csv::read(AAMI_3A, Some(720.0))?;
    rows.push(time(aami, "analyse", || {
        let analysis = analyze(&lead.samples, lead.sampling_rate_hz)?;
        Ok((lead.samples.len(), analysis.beats.len(), analysis.rhythm))
    })?);

    let noise = uniform_noise(648_000);
    rows.push(time("pure noise, 30 min at 360 Hz", "analyse", || {
        let analysis = analyze(&noise, 360.0)?;
        Ok((noise.len(), analysis.beats.len(), analysis.rhythm))
    })?);
    Ok(rows)
}

/// `n` samples of seeded uniform noise in [-0.5, 0.5) mV.
fn uniform_noise(n: usize) -> Vec<f64> {
    let mut rng = fastrand::Rng::with_seed(2026);
    (0..n).map(|_| rng.f64() - 0.5).collect()
}

fn time(
    record: &str,
    what: &'static str,
    mut measure: impl FnMut() -> anyhow::Result<(usize, usize, Rhythm)>,
) -> anyhow::Result<Timing> {
    let (samples, beats, rhythm) = measure()?;
    let mut runs = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let start = Instant::now();
        std::hint::black_box(measure()?);
        runs.push(start.elapsed());
    }
    Ok(Timing {
        record: record.to_owned(),
        what,
        samples,
        beats,
        rhythm,
        runs,
    })
}

pub fn render(rows: &[Timing]) -> String {
    let mut out = String::from(
        "| record | measured | samples | beats | rhythm | min ms | median ms | p95 ms | max ms |\n\
         |---|---|---:|---:|---|---:|---:|---:|---:|\n",
    );
    for row in rows {
        let mut ms: Vec<f64> = row.runs.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} |\n",
            row.record,
            row.what,
            row.samples,
            row.beats,
            row.rhythm,
            at(0.0),
            at(0.5),
            at(0.95),
            at(1.0)
        ));
    }
    out
}
