//! Rhythm from RR intervals: premature beats found by prematurity and the pause after them,
//! then irregularity judged on the intervals they do not touch (normalised RMSSD, turning-point
//! ratio and Shannon entropy over windows, after Dash et al. 2009), then rate classes.

use crate::detect::median;

/// The rhythm class. A decision-support label, not a diagnosis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Rhythm {
    /// Regular rhythm at 60–100 bpm.
    NormalSinus,
    /// Regular rhythm under 60 bpm.
    SinusBradycardia,
    /// Regular rhythm over 100 bpm.
    SinusTachycardia,
    /// Irregularly irregular RR intervals, as in atrial fibrillation.
    AtrialFibrillationSuspected,
    /// Irregular, but not in the random way of atrial fibrillation (e.g. bigeminy, frequent
    /// ectopy, marked sinus arrhythmia).
    IrregularOther,
    /// Poor signal, too few beats or too short a record to say.
    Undetermined,
}

impl Rhythm {
    /// The snake_case name used in serialized form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NormalSinus => "normal_sinus",
            Self::SinusBradycardia => "sinus_bradycardia",
            Self::SinusTachycardia => "sinus_tachycardia",
            Self::AtrialFibrillationSuspected => "atrial_fibrillation_suspected",
            Self::IrregularOther => "irregular_other",
            Self::Undetermined => "undetermined",
        }
    }
}

impl std::fmt::Display for Rhythm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Time-domain statistics of the RR intervals.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RrStatistics {
    /// Mean RR interval, in milliseconds.
    pub mean_ms: f64,
    /// Standard deviation of the RR intervals, in milliseconds.
    pub sdnn_ms: f64,
    /// Root mean square of successive RR differences, in milliseconds.
    pub rmssd_ms: f64,
    /// Percentage (0–100) of successive RR differences larger than 50 ms.
    pub pnn50: f64,
}

impl RrStatistics {
    /// Statistics over all intervals (at least two are needed).
    pub fn from_intervals_ms(rr: &[f64]) -> Option<Self> {
        if rr.len() < 2 {
            return None;
        }
        let n = rr.len() as f64;
        let mean = rr.iter().sum::<f64>() / n;
        let var = rr.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0);
        let diffs: Vec<f64> = rr.windows(2).map(|w| w[1] - w[0]).collect();
        let rmssd = (diffs.iter().map(|d| d * d).sum::<f64>() / diffs.len() as f64).sqrt();
        let over = diffs.iter().filter(|d| d.abs() > 50.0).count();
        Some(Self {
            mean_ms: mean,
            sdnn_ms: var.sqrt(),
            rmssd_ms: rmssd,
            pnn50: 100.0 * over as f64 / diffs.len() as f64,
        })
    }
}

/// What the rhythm stage found.
#[derive(Debug, Clone)]
pub(crate) struct RhythmFindings {
    pub rhythm: Rhythm,
    pub ectopic_beats: usize,
    /// Median heart rate of the beats not touched by ectopy, in bpm.
    pub median_rate_bpm: Option<f64>,
    /// Normalised RMSSD of those beats.
    pub irregularity: Option<f64>,
}

/// Windows of this many RR intervals are judged for irregularity.
const WINDOW: usize = 32;

/// Flags RR intervals that are not sinus-to-sinus: the short interval of a premature beat and
/// the pause after it, and intervals far from the local median (missed or extra detections).
/// Returns the flags and the number of premature beats.
fn flag_ectopy(rr: &[f64]) -> (Vec<bool>, usize) {
    let n = rr.len();
    let mut flagged = vec![false; n];
    let mut premature = 0;
    let half = 8;
    let local_median = |i: usize| {
        let lo = i.saturating_sub(half);
        let hi = (i + half + 1).min(n);
        let mut w: Vec<f64> = rr[lo..hi].to_vec();
        median(&mut w).unwrap_or(rr[i])
    };
    let mut i = 0;
    while i < n {
        let reference = local_median(i);
        let paused = i + 1 < n && rr[i] < 0.85 * reference && rr[i + 1] > 1.1 * reference;
        // Shorter than both neighbours by a fifth: a premature beat even when premature beats
        // are so frequent (bigeminy) that they set the local median.
        let shorter = i > 0 && i + 1 < n && rr[i] < 0.8 * rr[i - 1] && rr[i] < 0.8 * rr[i + 1];
        if paused || shorter {
            // A premature beat then a (compensatory or not) pause.
            flagged[i] = true;
            flagged[i + 1] = true;
            premature += 1;
            i += 2;
            continue;
        }
        if rr[i] < 0.6 * reference || rr[i] > 1.7 * reference {
            flagged[i] = true;
        }
        i += 1;
    }
    (flagged, premature)
}

/// Successive differences between intervals both unflagged and adjacent.
fn clean_runs(rr: &[f64], flagged: &[bool]) -> (Vec<f64>, Vec<f64>) {
    let clean: Vec<f64> = rr
        .iter()
        .zip(flagged)
        .filter(|(_, f)| !**f)
        .map(|(r, _)| *r)
        .collect();
    let diffs: Vec<f64> = (1..rr.len())
        .filter(|&i| !flagged[i] && !flagged[i - 1])
        .map(|i| rr[i] - rr[i - 1])
        .collect();
    (clean, diffs)
}

/// Turning-point ratio: the share of inner points that are a local maximum or minimum. Near
/// 2/3 for a random series, lower for a smooth one, 1 for an alternating one.
fn turning_point_ratio(series: &[f64]) -> Option<f64> {
    if series.len() < 3 {
        return None;
    }
    let turning = series
        .windows(3)
        .filter(|w| (w[1] > w[0] && w[1] > w[2]) || (w[1] < w[0] && w[1] < w[2]))
        .count();
    Some(turning as f64 / (series.len() - 2) as f64)
}

/// Shannon entropy of the RR histogram (8 bins between the smallest and largest interval),
/// normalised to 0..1 by the number of bins that the window can fill.
fn shannon_entropy(series: &[f64]) -> f64 {
    const BINS: usize = 8;
    let min = series.iter().copied().fold(f64::INFINITY, f64::min);
    let max = series.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let width = (max - min) / BINS as f64;
    if width <= 0.0 || series.len() < 2 {
        return 0.0;
    }
    let mut counts = [0usize; BINS];
    for &v in series {
        let bin = (((v - min) / width) as usize).min(BINS - 1);
        counts[bin] += 1;
    }
    let n = series.len() as f64;
    let h: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.ln()
        })
        .sum();
    h / (BINS.min(series.len()) as f64).ln()
}

/// Whether one window of RR intervals looks irregularly irregular, and its normalised RMSSD.
fn window_is_af(rr: &[f64], flagged: &[bool]) -> Option<(bool, f64)> {
    let (clean, diffs) = clean_runs(rr, flagged);
    if clean.len() < 8 || diffs.len() < 6 {
        return None;
    }
    let mean = clean.iter().sum::<f64>() / clean.len() as f64;
    let rmssd = (diffs.iter().map(|d| d * d).sum::<f64>() / diffs.len() as f64).sqrt();
    let nrmssd = rmssd / mean;
    let tpr = turning_point_ratio(&clean).unwrap_or(0.0);
    let entropy = shannon_entropy(&clean);
    let af = nrmssd > 0.1 && (0.45..=0.9).contains(&tpr) && entropy > 0.6;
    Some((af, nrmssd))
}

/// RR statistics over normal-to-normal intervals: the mean and SDNN over unflagged intervals,
/// RMSSD and pNN50 over successive pairs of unflagged intervals.
pub(crate) fn normal_to_normal_statistics(beats: &[usize], rate_hz: f64) -> Option<RrStatistics> {
    let rr: Vec<f64> = beats
        .windows(2)
        .map(|w| (w[1] - w[0]) as f64 * 1000.0 / rate_hz)
        .collect();
    if rr.len() < 3 {
        return None;
    }
    let (flagged, _) = flag_ectopy(&rr);
    let (clean, diffs) = clean_runs(&rr, &flagged);
    if clean.len() < 2 || diffs.is_empty() {
        return None;
    }
    let n = clean.len() as f64;
    let mean = clean.iter().sum::<f64>() / n;
    let var = clean.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let rmssd = (diffs.iter().map(|d| d * d).sum::<f64>() / diffs.len() as f64).sqrt();
    let over = diffs.iter().filter(|d| d.abs() > 50.0).count();
    Some(RrStatistics {
        mean_ms: mean,
        sdnn_ms: var.sqrt(),
        rmssd_ms: rmssd,
        pnn50: 100.0 * over as f64 / diffs.len() as f64,
    })
}

/// Classifies the rhythm from beat positions (sample indices).
pub(crate) fn classify(beats: &[usize], rate_hz: f64) -> RhythmFindings {
    let rr: Vec<f64> = beats
        .windows(2)
        .map(|w| (w[1] - w[0]) as f64 * 1000.0 / rate_hz)
        .collect();
    let undetermined = RhythmFindings {
        rhythm: Rhythm::Undetermined,
        ectopic_beats: 0,
        median_rate_bpm: None,
        irregularity: None,
    };
    if rr.len() < 3 {
        return undetermined;
    }
    let (flagged, ectopic_beats) = flag_ectopy(&rr);
    let (clean, _) = clean_runs(&rr, &flagged);
    // The median NN interval; when most intervals touch ectopy (e.g. bigeminy) the leftovers
    // are no sinus reference, and the mean of all intervals stands in for it.
    let typical_rr = if clean.len() * 2 >= rr.len() {
        median(&mut clean.clone())
    } else {
        Some(rr.iter().sum::<f64>() / rr.len() as f64)
    };
    let Some(typical_rr) = typical_rr else {
        return RhythmFindings {
            ectopic_beats,
            ..undetermined
        };
    };
    let median_rate_bpm = 60_000.0 / typical_rr;

    // Windows of WINDOW intervals (the last one merged if short); a short record is one window.
    let mut verdicts = Vec::new();
    let mut start = 0;
    while start < rr.len() {
        let mut end = (start + WINDOW).min(rr.len());
        if rr.len() - end < WINDOW / 2 {
            end = rr.len();
        }
        if let Some(v) = window_is_af(&rr[start..end], &flagged[start..end]) {
            verdicts.push(v);
        }
        start = end;
    }
    let mut irregularities: Vec<f64> = verdicts.iter().map(|v| v.1).collect();
    let irregularity = median(&mut irregularities);
    let af_windows = verdicts.iter().filter(|v| v.0).count();

    let rhythm = if verdicts.is_empty() {
        // Too few clean successive intervals to judge: a rate class only if nearly all are
        // clean; many flagged intervals (e.g. bigeminy) make the rhythm irregular.
        if clean.len() * 4 >= rr.len() * 3 {
            rate_class(median_rate_bpm)
        } else if rr.len() >= 8 {
            Rhythm::IrregularOther
        } else {
            Rhythm::Undetermined
        }
    } else if af_windows * 2 > verdicts.len() {
        Rhythm::AtrialFibrillationSuspected
    } else if irregularity.is_some_and(|r| r > 0.12) || ectopic_beats * 4 > rr.len() {
        Rhythm::IrregularOther
    } else {
        rate_class(median_rate_bpm)
    };
    RhythmFindings {
        rhythm,
        ectopic_beats,
        median_rate_bpm: Some(median_rate_bpm),
        irregularity,
    }
}

fn rate_class(bpm: f64) -> Rhythm {
    if bpm < 60.0 {
        Rhythm::SinusBradycardia
    } else if bpm > 100.0 {
        Rhythm::SinusTachycardia
    } else {
        Rhythm::NormalSinus
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beats_from_rr(rr_ms: &[f64], rate: f64) -> Vec<usize> {
        let mut t = 0.5;
        let mut out = vec![(t * rate) as usize];
        for r in rr_ms {
            t += r / 1000.0;
            out.push((t * rate).round() as usize);
        }
        out
    }

    #[test]
    fn rr_statistics_match_hand_computed_values() {
        let stats = RrStatistics::from_intervals_ms(&[800.0, 900.0, 800.0]);
        let stats = stats.expect("three intervals");
        assert!((stats.mean_ms - 833.333).abs() < 0.01);
        assert!((stats.rmssd_ms - 100.0).abs() < 1e-9);
        assert!((stats.pnn50 - 100.0).abs() < 1e-9);
        assert!((stats.sdnn_ms - 57.735).abs() < 0.01);
    }

    #[test]
    fn a_premature_beat_with_its_pause_is_counted_and_does_not_make_the_rhythm_irregular() {
        let mut rr = vec![800.0; 40];
        rr[10] = 480.0;
        rr[11] = 1120.0;
        rr[25] = 500.0;
        rr[26] = 1100.0;
        let findings = classify(&beats_from_rr(&rr, 360.0), 360.0);
        assert_eq!(findings.ectopic_beats, 2);
        assert_eq!(findings.rhythm, Rhythm::NormalSinus);
    }

    #[test]
    fn alternating_intervals_are_irregular_but_not_af() {
        let rr: Vec<f64> = (0..60)
            .map(|i| if i % 2 == 0 { 550.0 } else { 950.0 })
            .collect();
        let findings = classify(&beats_from_rr(&rr, 250.0), 250.0);
        assert_eq!(findings.rhythm, Rhythm::IrregularOther);
    }

    #[test]
    fn too_few_beats_are_undetermined() {
        assert_eq!(
            classify(&[100, 400, 700], 360.0).rhythm,
            Rhythm::Undetermined
        );
    }
}
