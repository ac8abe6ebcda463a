//! A seeded synthetic ECG generator with known beat positions, for tests and benchmarks (feature
//! `synth`). Each beat is a sum of Gaussian waves (P, Q, R, S, T), in the spirit of McSharry et
//! al.'s ECGSYN (2003) but placed directly in time: RR intervals come from the rhythm (sinus with
//! respiratory and random variability, or atrial fibrillation: independent random RR, no P
//! waves, fibrillatory baseline), premature ventricular beats are wide with an opposite T wave
//! and a compensatory pause. White noise, baseline wander and mains interference can be added.
//! Writers produce WFDB (header text and signal bytes, plus beat annotations) and CSV.

use std::f64::consts::PI;
use std::fmt::Write as _;

use crate::wfdb::{self, Annotation, AnnotationCode, SignalFormat};

/// The rhythm to synthesise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SynthRhythm {
    /// Sinus rhythm with P waves; `variability` is the RR standard deviation as a fraction of
    /// the mean (respiratory plus random; 0.03 is typical at rest).
    Sinus {
        /// Fractional RR variability.
        variability: f64,
    },
    /// Atrial fibrillation: independent log-normal RR intervals (`irregularity` is the log
    /// standard deviation, 0.15–0.3 is typical), no P waves, fibrillatory waves of
    /// `f_wave_mv` amplitude at 5–7 Hz.
    AtrialFibrillation {
        /// Log standard deviation of the RR intervals.
        irregularity: f64,
        /// Amplitude of the fibrillatory waves, in mV.
        f_wave_mv: f64,
    },
}

/// Mains interference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Powerline {
    /// Frequency, 50 or 60 Hz.
    pub frequency_hz: f64,
    /// Amplitude, in mV.
    pub amplitude_mv: f64,
}

/// What to synthesise.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthConfig {
    /// Seed: the same configuration and seed give the same record.
    pub seed: u64,
    /// Sampling rate, 100 to 1000 Hz.
    pub sampling_rate_hz: f64,
    /// Length, in seconds.
    pub duration_secs: f64,
    /// Mean heart rate, 20 to 250 bpm.
    pub heart_rate_bpm: f64,
    /// The rhythm.
    pub rhythm: SynthRhythm,
    /// Probability that a beat is followed by a premature ventricular beat (0 to 0.5).
    pub pvc_probability: f64,
    /// Probability that a beat is followed by a premature atrial beat (sinus rhythm only, 0 to
    /// 0.5): a normal QRS at 65–80 % of the RR interval with an early P wave, then a
    /// non-compensatory pause (the sinus node resets).
    pub pac_probability: f64,
    /// Standard deviation of white (muscle-like) noise, in mV.
    pub noise_mv: f64,
    /// Amplitude of baseline wander, in mV.
    pub baseline_wander_mv: f64,
    /// Mains interference, if any.
    pub powerline: Option<Powerline>,
    /// Number of leads (1 to 12): II, V1, V5, then I, III, aVF and further variants.
    pub leads: usize,
}

impl Default for SynthConfig {
    /// One minute of lead II at 360 Hz, 70 bpm, clean sinus rhythm.
    fn default() -> Self {
        Self {
            seed: 1,
            sampling_rate_hz: 360.0,
            duration_secs: 60.0,
            heart_rate_bpm: 70.0,
            rhythm: SynthRhythm::Sinus { variability: 0.03 },
            pvc_probability: 0.0,
            pac_probability: 0.0,
            noise_mv: 0.0,
            baseline_wander_mv: 0.0,
            powerline: None,
            leads: 1,
        }
    }
}

/// The kind of a synthesised beat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BeatKind {
    /// A sinus (or, in AF, conducted) beat.
    Normal,
    /// A premature ventricular beat.
    Ventricular,
    /// A premature atrial beat.
    Atrial,
}

/// A synthesised record with its true beats.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthRecord {
    /// Sampling rate, in Hz.
    pub sampling_rate_hz: f64,
    /// One vector of samples (mV) per lead, all the same length.
    pub leads: Vec<Vec<f64>>,
    /// Lead names.
    pub lead_names: Vec<String>,
    /// Sample index of each beat's R peak, increasing.
    pub beats: Vec<usize>,
    /// Kind of each beat.
    pub kinds: Vec<BeatKind>,
}

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SynthError {
    /// A parameter is out of range.
    #[error("{name} = {value} is out of range")]
    OutOfRange {
        /// The parameter.
        name: &'static str,
        /// Its value.
        value: f64,
    },
}

/// Amplitudes (mV) of P, Q, R, S, T for a normal beat, and R-like, S-like, T for a ventricular
/// beat, per lead.
#[derive(Debug, Clone, Copy)]
struct LeadProfile {
    name: &'static str,
    normal: [f64; 5],
    ventricular: [f64; 3],
    f_wave: f64,
}

const PROFILES: [LeadProfile; 6] = [
    LeadProfile {
        name: "II",
        normal: [0.15, -0.10, 1.20, -0.25, 0.35],
        ventricular: [1.40, -0.45, -0.50],
        f_wave: 0.7,
    },
    LeadProfile {
        name: "V1",
        normal: [0.08, 0.0, 0.35, -1.00, -0.12],
        ventricular: [-0.60, -1.30, 0.45],
        f_wave: 1.0,
    },
    LeadProfile {
        name: "V5",
        normal: [0.10, -0.15, 1.60, -0.35, 0.45],
        ventricular: [1.70, -0.30, -0.55],
        f_wave: 0.4,
    },
    LeadProfile {
        name: "I",
        normal: [0.08, -0.05, 0.70, -0.10, 0.20],
        ventricular: [0.90, -0.40, -0.30],
        f_wave: 0.3,
    },
    LeadProfile {
        name: "III",
        normal: [0.07, -0.08, 0.55, -0.20, 0.15],
        ventricular: [-0.80, 0.30, 0.35],
        f_wave: 0.6,
    },
    LeadProfile {
        name: "aVF",
        normal: [0.11, -0.09, 0.90, -0.22, 0.25],
        ventricular: [0.60, -0.70, -0.30],
        f_wave: 0.6,
    },
];

/// A seeded source of uniform and normal numbers.
#[derive(Debug)]
struct Random(fastrand::Rng);

impl Random {
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.0.f64()
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u1 = self.0.f64().max(f64::MIN_POSITIVE);
        let u2 = self.0.f64();
        (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos()
    }
}

fn check(name: &'static str, value: f64, lo: f64, hi: f64) -> Result<(), SynthError> {
    if value.is_finite() && (lo..=hi).contains(&value) {
        Ok(())
    } else {
        Err(SynthError::OutOfRange { name, value })
    }
}

/// Synthesises a record.
///
/// # Errors
/// [`SynthError::OutOfRange`] for a parameter outside its documented range.
pub fn generate(config: &SynthConfig) -> Result<SynthRecord, SynthError> {
    check("sampling_rate_hz", config.sampling_rate_hz, 100.0, 1000.0)?;
    check("duration_secs", config.duration_secs, 0.0, 86_400.0)?;
    check("heart_rate_bpm", config.heart_rate_bpm, 20.0, 250.0)?;
    check("pvc_probability", config.pvc_probability, 0.0, 0.5)?;
    check("pac_probability", config.pac_probability, 0.0, 0.5)?;
    check("noise_mv", config.noise_mv, 0.0, 100.0)?;
    check("baseline_wander_mv", config.baseline_wander_mv, 0.0, 100.0)?;
    check("leads", config.leads as f64, 1.0, 12.0)?;
    match config.rhythm {
        SynthRhythm::Sinus { variability } => check("variability", variability, 0.0, 0.5)?,
        SynthRhythm::AtrialFibrillation {
            irregularity,
            f_wave_mv,
        } => {
            check("irregularity", irregularity, 0.0, 1.0)?;
            check("f_wave_mv", f_wave_mv, 0.0, 10.0)?;
        }
    }
    if let Some(p) = config.powerline {
        check("powerline frequency", p.frequency_hz, 1.0, 1000.0)?;
        check("powerline amplitude", p.amplitude_mv, 0.0, 100.0)?;
    }

    let mut rng = Random(fastrand::Rng::with_seed(config.seed));
    let rate = config.sampling_rate_hz;
    let n = (config.duration_secs * rate).round() as usize;
    let (times, kinds, rrs) = beat_times(config, &mut rng);

    let mut leads = Vec::with_capacity(config.leads);
    let mut lead_names = Vec::with_capacity(config.leads);
    for lead in 0..config.leads {
        let profile = PROFILES[lead % PROFILES.len()];
        let name = if lead < PROFILES.len() {
            profile.name.to_owned()
        } else {
            format!("{}-{}", profile.name, lead / PROFILES.len() + 1)
        };
        lead_names.push(name);
        let mut signal = vec![0.0; n];
        // Per-record morphology variation.
        let mut scale = [0.0; 5];
        for s in &mut scale {
            *s = rng.uniform(0.85, 1.15);
        }
        let resp_phase = rng.uniform(0.0, 2.0 * PI);
        for ((&t, &kind), &rr) in times.iter().zip(&kinds).zip(&rrs) {
            let amplitude =
                (1.0 + 0.06 * (2.0 * PI * 0.25 * t + resp_phase).sin()) * rng.uniform(0.96, 1.04);
            let waves = beat_waves(&profile, kind, rr, &scale, config.rhythm);
            for (offset, sigma, amp) in waves {
                add_gaussian(&mut signal, rate, t + offset, sigma, amp * amplitude);
            }
        }
        add_noise(&mut signal, config, profile.f_wave, &mut rng);
        leads.push(signal);
    }
    let beats = times.iter().map(|t| (t * rate).round() as usize).collect();
    Ok(SynthRecord {
        sampling_rate_hz: rate,
        leads,
        lead_names,
        beats,
        kinds,
    })
}

/// Beat times (s), kinds, and the RR interval (s) preceding each beat (its rate context).
fn beat_times(config: &SynthConfig, rng: &mut Random) -> (Vec<f64>, Vec<BeatKind>, Vec<f64>) {
    let mean_rr = 60.0 / config.heart_rate_bpm;
    let end = config.duration_secs - 0.4;
    let mut times = Vec::new();
    let mut kinds = Vec::new();
    let mut rrs = Vec::new();
    let mut t = rng.uniform(0.3, 0.3 + mean_rr);
    let mut previous_rr = mean_rr;
    let resp_phase = rng.uniform(0.0, 2.0 * PI);
    while t < end {
        times.push(t);
        kinds.push(BeatKind::Normal);
        rrs.push(previous_rr);
        let rr = match config.rhythm {
            SynthRhythm::Sinus { variability } => {
                let resp = (2.0 * PI * 0.25 * t + resp_phase).sin();
                mean_rr * (1.0 + variability * (resp + 0.5 * rng.normal()))
            }
            SynthRhythm::AtrialFibrillation { irregularity, .. } => {
                let log_mean = -0.5 * irregularity * irregularity;
                mean_rr * (log_mean + irregularity * rng.normal()).exp()
            }
        }
        .clamp((0.4 * mean_rr).max(0.25), 2.5 * mean_rr);
        // A ventricular beat comes at 55–70 % of the RR interval, and not before 300 ms
        // (earlier is R-on-T, not modelled).
        let coupling = (rr * rng.uniform(0.55, 0.7)).max(0.3);
        let premature =
            times.len() > 2 && rng.0.f64() < config.pvc_probability && coupling < 0.85 * rr;
        if premature {
            if t + coupling < end {
                times.push(t + coupling);
                kinds.push(BeatKind::Ventricular);
                rrs.push(coupling);
            }
            // Full compensatory pause in sinus rhythm; in AF the next interval is random.
            let next = match config.rhythm {
                SynthRhythm::Sinus { .. } => 2.0 * rr,
                SynthRhythm::AtrialFibrillation { .. } => coupling + rr,
            };
            t += next;
        } else if matches!(config.rhythm, SynthRhythm::Sinus { .. })
            && times.len() > 2
            && rng.0.f64() < config.pac_probability
        {
            let coupling = (rr * rng.uniform(0.65, 0.8)).max(0.3);
            if t + coupling < end {
                times.push(t + coupling);
                kinds.push(BeatKind::Atrial);
                rrs.push(coupling);
            }
            t += coupling + rr;
        } else {
            t += rr;
        }
        previous_rr = rr;
    }
    (times, kinds, rrs)
}

/// (offset from the R peak in s, sigma in s, amplitude in mV) for each wave of a beat.
fn beat_waves(
    profile: &LeadProfile,
    kind: BeatKind,
    rr: f64,
    scale: &[f64; 5],
    rhythm: SynthRhythm,
) -> Vec<(f64, f64, f64)> {
    // QT and PR shorten with the rate (Bazett-like square root of RR).
    let k = rr.clamp(0.3, 2.0).sqrt();
    match kind {
        BeatKind::Normal | BeatKind::Atrial => {
            let [p, q, r, s, t] = profile.normal;
            let mut waves = vec![
                (-0.030, 0.010, q * scale[1]),
                (0.0, 0.011, r * scale[2]),
                (0.030, 0.011, s * scale[3]),
                (0.30 * k, 0.06 * k, t * scale[4]),
            ];
            if kind == BeatKind::Atrial {
                // An ectopic P wave: earlier, smaller and inverted (low atrial focus).
                waves.push((-0.13, 0.02, -0.6 * p * scale[0]));
            } else if matches!(rhythm, SynthRhythm::Sinus { .. }) {
                waves.push((-0.17 * k.min(1.0), 0.022, p * scale[0]));
            }
            waves
        }
        BeatKind::Ventricular => {
            let [r, s, t] = profile.ventricular;
            vec![
                (0.0, 0.030, r * scale[2]),
                (0.065, 0.032, s * scale[3]),
                (0.33 * k, 0.075 * k, t * scale[4]),
            ]
        }
    }
}

fn add_gaussian(signal: &mut [f64], rate: f64, centre: f64, sigma: f64, amplitude: f64) {
    if amplitude == 0.0 {
        return;
    }
    let lo = ((centre - 4.0 * sigma) * rate).floor().max(0.0) as usize;
    let hi = (((centre + 4.0 * sigma) * rate).ceil().max(0.0) as usize).min(signal.len());
    for (i, s) in signal.iter_mut().enumerate().take(hi).skip(lo) {
        let x = (i as f64 / rate - centre) / sigma;
        *s += amplitude * (-0.5 * x * x).exp();
    }
}

fn add_noise(signal: &mut [f64], config: &SynthConfig, f_wave_gain: f64, rng: &mut Random) {
    let rate = config.sampling_rate_hz;
    // Baseline wander: respiration-like and slower components.
    let wander: Vec<(f64, f64, f64)> = [(0.15, 0.35, 0.6), (0.03, 0.1, 0.4)]
        .iter()
        .map(|&(lo, hi, share)| {
            (
                rng.uniform(lo, hi),
                rng.uniform(0.0, 2.0 * PI),
                share * config.baseline_wander_mv,
            )
        })
        .collect();
    let mains_phase = rng.uniform(0.0, 2.0 * PI);
    let f_wave_mv = match config.rhythm {
        SynthRhythm::AtrialFibrillation { f_wave_mv, .. } => f_wave_mv * f_wave_gain,
        SynthRhythm::Sinus { .. } => 0.0,
    };
    let mut f_phase = rng.uniform(0.0, 2.0 * PI);
    let mut f_freq = rng.uniform(5.0, 7.0);
    let mut f_amp = 1.0;
    for (i, s) in signal.iter_mut().enumerate() {
        let t = i as f64 / rate;
        for &(freq, phase, amp) in &wander {
            *s += amp * (2.0 * PI * freq * t + phase).sin();
        }
        if let Some(p) = config.powerline {
            *s += p.amplitude_mv * (2.0 * PI * p.frequency_hz * t + mains_phase).sin();
        }
        if f_wave_mv > 0.0 {
            // Fibrillatory waves: frequency and amplitude drifting slowly.
            f_freq = (f_freq + 0.02 * rng.normal()).clamp(4.5, 8.0);
            f_amp = (f_amp + 0.003 * rng.normal()).clamp(0.5, 1.5);
            f_phase += 2.0 * PI * f_freq / rate;
            *s += f_wave_mv * f_amp * f_phase.sin();
        }
        if config.noise_mv > 0.0 {
            *s += config.noise_mv * rng.normal();
        }
    }
}

impl SynthRecord {
    /// The record as WFDB: header text and signal file bytes (`{record_name}.dat`).
    pub fn to_wfdb(&self, record_name: &str, format: SignalFormat) -> (String, Vec<u8>) {
        write_wfdb(
            record_name,
            &self.leads,
            &self.lead_names,
            self.sampling_rate_hz,
            format,
        )
    }

    /// The true beats as WFDB annotations (`N` and `V`).
    pub fn annotations(&self) -> Vec<Annotation> {
        self.beats
            .iter()
            .zip(&self.kinds)
            .map(|(&b, &k)| Annotation {
                sample: b as u64,
                code: match k {
                    BeatKind::Normal => AnnotationCode::NORMAL,
                    BeatKind::Ventricular => AnnotationCode::PVC,
                    BeatKind::Atrial => AnnotationCode::APC,
                },
                subtype: 0,
                channel: 0,
                num: 0,
                aux: None,
            })
            .collect()
    }
}

/// Writes leads (mV, cut to the shortest) as a WFDB record: header text and the bytes of
/// `{record_name}.dat`, signals interleaved. Gains: 200 adu/mV in format 212, 1000 in the
/// 16-bit formats, 20 in format 80; values beyond the format's range are clipped.
pub fn to_wfdb<L: AsRef<[f64]>>(
    record_name: &str,
    leads: &[L],
    sampling_rate_hz: f64,
    format: SignalFormat,
) -> (String, Vec<u8>) {
    let names: Vec<String> = (1..=leads.len()).map(|i| format!("ECG{i}")).collect();
    write_wfdb(record_name, leads, &names, sampling_rate_hz, format)
}

fn write_wfdb<L: AsRef<[f64]>>(
    record_name: &str,
    leads: &[L],
    names: &[String],
    sampling_rate_hz: f64,
    format: SignalFormat,
) -> (String, Vec<u8>) {
    let n = leads.iter().map(|l| l.as_ref().len()).min().unwrap_or(0);
    let gain = match format {
        SignalFormat::Format212 => 200.0,
        SignalFormat::Format80 => 20.0,
        _ => 1000.0,
    };
    let (lo, hi) = format.range();
    let adc: Vec<Vec<i32>> = leads
        .iter()
        .map(|l| {
            l.as_ref()[..n]
                .iter()
                .map(|v| ((v * gain).round().clamp(f64::from(lo + 1), f64::from(hi))) as i32)
                .collect()
        })
        .collect();
    let mut interleaved = Vec::with_capacity(n * leads.len());
    for i in 0..n {
        for lead in &adc {
            interleaved.push(lead[i]);
        }
    }
    let bytes = wfdb::encode_samples(format, &interleaved);
    let mut header = format!("{record_name} {} {sampling_rate_hz} {n}\n", leads.len());
    for (lead, name) in adc.iter().zip(names) {
        let checksum = lead.iter().fold(0i32, |acc, v| acc.wrapping_add(*v)) as i16;
        let first = lead.first().copied().unwrap_or(0);
        let _ = writeln!(
            header,
            "{record_name}.dat {} {gain}(0)/mV {} 0 {first} {checksum} 0 {name}",
            format.code(),
            format.default_resolution()
        );
    }
    (header, bytes)
}

/// Writes leads (mV, cut to the shortest) as CSV with a header row: `time,NAME...` (time in
/// seconds) when `with_time`, else the lead columns only.
pub fn to_csv<L: AsRef<[f64]>>(leads: &[L], sampling_rate_hz: f64, with_time: bool) -> String {
    let n = leads.iter().map(|l| l.as_ref().len()).min().unwrap_or(0);
    let mut out = String::with_capacity(n * 10 * (leads.len() + 1));
    let names: Vec<String> = (1..=leads.len()).map(|i| format!("ECG{i}")).collect();
    if with_time {
        out.push_str("time,");
    }
    out.push_str(&names.join(","));
    out.push('\n');
    for i in 0..n {
        if with_time {
            let _ = write!(out, "{:.6},", i as f64 / sampling_rate_hz);
        }
        for (k, lead) in leads.iter().enumerate() {
            if k > 0 {
                out.push(',');
            }
            let _ = write!(out, "{:.5}", lead.as_ref()[i]);
        }
        out.push('\n');
    }
    out
}
