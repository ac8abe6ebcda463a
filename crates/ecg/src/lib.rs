//! CareHub's ECG analysis: from one lead's samples and its sampling rate, the QRS complexes
//! (R peaks), heart rate, RR statistics, a rhythm class, a premature-beat count and a signal
//! quality score. Pure computation: no I/O, no async, no framework. Readers for WFDB and CSV
//! records sit in [`wfdb`] and [`csv`], a beat-matching scorer in [`evaluate`], and a seeded
//! synthetic ECG generator in `synth` (feature `synth`).
//!
//! The result is decision support for a clinician, not a diagnosis.

mod detect;
pub mod evaluate;
mod filter;
mod quality;
mod recording;
mod rhythm;

pub mod csv;
#[cfg(feature = "synth")]
pub mod synth;
pub mod wfdb;

pub use recording::Recording;

// The README's examples run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme_doctests {}
pub use rhythm::{Rhythm, RrStatistics};

/// Names the algorithm and its version; stored with every result so that a result can be told
/// apart from one made by a later version.
pub const ALGORITHM_VERSION: &str = "carehub-ecg 1.0";

/// The lowest sampling rate accepted, in Hz.
pub const MIN_SAMPLING_RATE_HZ: f64 = 100.0;
/// The highest sampling rate accepted, in Hz.
pub const MAX_SAMPLING_RATE_HZ: f64 = 1000.0;

/// What [`analyze`] found in one lead.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Analysis {
    /// [`ALGORITHM_VERSION`] of the code that made this result.
    pub algorithm_version: String,
    /// Sampling rate of the analysed samples, in Hz.
    pub sampling_rate_hz: f64,
    /// Length of the record, in seconds.
    pub duration_secs: f64,
    /// Detected QRS complexes: sample indices of the R peaks (the largest deflection), increasing.
    pub beats: Vec<usize>,
    /// Mean heart rate over the record, in beats per minute; `None` with fewer than two beats or
    /// when the signal quality is too poor to trust it.
    pub heart_rate_bpm: Option<f64>,
    /// RR statistics over normal-to-normal intervals (intervals touching a premature beat or an
    /// implausible interval are left out); `None` when too few remain or the signal is poor.
    pub rr: Option<RrStatistics>,
    /// Heart rate from the median normal-to-normal RR interval, in bpm (the rate the rhythm
    /// class uses: under 60 bradycardia, over 100 tachycardia); from the mean of all intervals
    /// when most of them touch a premature beat; `None` like `heart_rate_bpm`.
    pub median_heart_rate_bpm: Option<f64>,
    /// The rhythm class.
    pub rhythm: Rhythm,
    /// Signal quality from 0 (unusable) to 1 (clean), from beat morphology consistency, RR
    /// plausibility and the share of the record with beats. Under 0.5 the rhythm is
    /// `undetermined`.
    pub signal_quality: f64,
    /// Estimated number of premature beats (a short RR interval followed by a pause). Not
    /// meaningful when the rhythm is `atrial_fibrillation_suspected`.
    pub ectopic_beats: usize,
    /// Normalised RMSSD (RMSSD / mean RR) of the normal-to-normal intervals, the irregularity
    /// measure behind the rhythm class (median over 32-beat windows); `None` if not computed.
    pub rr_irregularity: Option<f64>,
}

/// Why [`analyze`] refused its input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AnalysisError {
    /// The sampling rate is not a number within 100–1000 Hz.
    #[error("sampling rate {0} Hz is outside 100–1000 Hz")]
    InvalidSamplingRate(f64),
    /// No samples were given.
    #[error("the signal has no samples")]
    EmptySignal,
    /// A sample is NaN or infinite.
    #[error("sample {index} is not a finite number")]
    NonFiniteSample {
        /// Index of the first such sample.
        index: usize,
    },
}

/// Analyses one lead: `samples` in physical units (e.g. mV; the scale does not matter), taken at
/// `sampling_rate_hz` (100 to 1000 Hz).
///
/// # Errors
/// [`AnalysisError::InvalidSamplingRate`] outside 100–1000 Hz, [`AnalysisError::EmptySignal`]
/// for no samples, [`AnalysisError::NonFiniteSample`] for a NaN or infinite sample.
pub fn analyze(samples: &[f64], sampling_rate_hz: f64) -> Result<Analysis, AnalysisError> {
    if !(MIN_SAMPLING_RATE_HZ..=MAX_SAMPLING_RATE_HZ).contains(&sampling_rate_hz) {
        return Err(AnalysisError::InvalidSamplingRate(sampling_rate_hz));
    }
    if samples.is_empty() {
        return Err(AnalysisError::EmptySignal);
    }
    if let Some(index) = samples.iter().position(|s| !s.is_finite()) {
        return Err(AnalysisError::NonFiniteSample { index });
    }
    let detection = detect::detect(samples, sampling_rate_hz);
    let beats = detection.beats;
    let signal_quality = quality::signal_quality(&beats, &detection.wide, sampling_rate_hz);
    let findings = rhythm::classify(&beats, sampling_rate_hz);
    let trusted = signal_quality >= quality::MIN_QUALITY;

    let heart_rate_bpm = match (beats.first(), beats.last()) {
        (Some(&first), Some(&last)) if trusted && last > first => {
            Some(60.0 * (beats.len() - 1) as f64 * sampling_rate_hz / (last - first) as f64)
        }
        _ => None,
    };
    let rr = if trusted {
        rhythm::normal_to_normal_statistics(&beats, sampling_rate_hz)
    } else {
        None
    };
    let rhythm = if trusted {
        findings.rhythm
    } else {
        Rhythm::Undetermined
    };
    Ok(Analysis {
        algorithm_version: ALGORITHM_VERSION.to_owned(),
        sampling_rate_hz,
        duration_secs: samples.len() as f64 / sampling_rate_hz,
        beats,
        heart_rate_bpm,
        rr,
        median_heart_rate_bpm: findings.median_rate_bpm.filter(|_| trusted),
        rhythm,
        signal_quality,
        ectopic_beats: findings.ectopic_beats,
        rr_irregularity: findings.irregularity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_outside_100_to_1000_hz_are_refused() {
        for rate in [99.0, 1001.0, 0.0, -360.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                analyze(&[0.0; 1000], rate),
                Err(AnalysisError::InvalidSamplingRate(_))
            ));
        }
        assert!(analyze(&[0.0; 1000], 100.0).is_ok());
        assert!(analyze(&[0.0; 1000], 1000.0).is_ok());
    }

    #[test]
    fn empty_and_non_finite_input_is_refused() {
        assert_eq!(analyze(&[], 360.0), Err(AnalysisError::EmptySignal));
        assert_eq!(
            analyze(&[0.0, 1.0, f64::NAN], 360.0),
            Err(AnalysisError::NonFiniteSample { index: 2 })
        );
    }

    #[test]
    fn a_flat_line_has_no_beats_and_is_undetermined() {
        let analysis = analyze(&[0.5; 36_000], 360.0).expect("valid input");
        assert!(analysis.beats.is_empty());
        assert_eq!(analysis.rhythm, Rhythm::Undetermined);
        assert_eq!(analysis.heart_rate_bpm, None);
        assert!(analysis.signal_quality.abs() < f64::EPSILON);
    }

    #[test]
    fn extreme_values_do_not_panic() {
        for value in [1e300, -1e300, f64::MAX, f64::MIN_POSITIVE] {
            let samples: Vec<f64> = (0..2000)
                .map(|i| if i % 300 == 0 { value } else { 0.0 })
                .collect();
            assert!(analyze(&samples, 360.0).is_ok());
        }
    }

    #[test]
    fn a_short_tail_of_samples_does_not_panic() {
        for n in 1..10 {
            let samples: Vec<f64> = (0..n).map(|i| i as f64).collect();
            assert!(analyze(&samples, 250.0).is_ok());
        }
    }
}
