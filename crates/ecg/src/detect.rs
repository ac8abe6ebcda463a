//! QRS detection after Pan & Tompkins (1985), offline and rate-independent: a 5–15 Hz band-pass,
//! a derivative, squaring and a 150 ms moving window, then adaptive signal and noise levels,
//! a refractory period, T-wave discrimination by slope and a search back for missed beats.
//! Each detection is then moved to the R peak on a 0.5–40 Hz filtered copy of the signal.
//!
//! Two departures from the original, both for robustness on an offline record: the moving
//! window output is square-rooted (an RMS slope, in signal units per second), which narrows the
//! range between ectopic beats and small complexes; and the levels are initialised from the
//! first seconds of the record instead of a fixed two-second learning phase.

use crate::filter::band_pass_pair;

/// What the detector produces besides the beat positions, for the quality and rhythm stages.
#[derive(Debug, Clone)]
pub(crate) struct Detection {
    /// R-peak sample indices, increasing.
    pub beats: Vec<usize>,
    /// The 0.5–40 Hz filtered signal the peaks were refined on.
    pub wide: Vec<f64>,
}

/// A local maximum of the integrated signal.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    at: usize,
    level: f64,
    slope: f64,
}

/// Samples in `ms` milliseconds at `rate_hz` (at least 1).
pub(crate) fn samples_in(ms: f64, rate_hz: f64) -> usize {
    ((ms * rate_hz / 1000.0).round() as usize).max(1)
}

pub(crate) fn detect(samples: &[f64], rate_hz: f64) -> Detection {
    let (wide, narrow) = band_pass_pair(samples, rate_hz, (0.5, 40.0), (5.0, 15.0));
    let n = narrow.len();
    if n < 3 {
        return Detection {
            beats: Vec::new(),
            wide,
        };
    }
    let slope = Slope {
        narrow: &narrow,
        rate_hz,
    };
    let envelope = envelope(&slope, samples_in(150.0, rate_hz));
    let candidates = candidates(&envelope, &slope, rate_hz);
    let peaks = select(&candidates, &envelope, rate_hz);
    let beats = refine(&peaks, &wide, rate_hz);
    Detection { beats, wide }
}

/// The derivative of the detection band, computed where asked (central difference, in signal
/// units per second; 0 at the ends).
#[derive(Debug, Clone, Copy)]
struct Slope<'a> {
    narrow: &'a [f64],
    rate_hz: f64,
}

impl Slope<'_> {
    #[inline]
    fn at(&self, i: usize) -> f64 {
        if i == 0 || i + 1 >= self.narrow.len() {
            0.0
        } else {
            (self.narrow[i + 1] - self.narrow[i - 1]) * self.rate_hz / 2.0
        }
    }
}

/// The square root of the centred moving average of the squared slope over `width` samples
/// (an RMS slope), with a running sum: one pass, one allocation.
fn envelope(slope: &Slope<'_>, width: usize) -> Vec<f64> {
    let n = slope.narrow.len();
    let half = width / 2;
    let mut out = Vec::with_capacity(n);
    let mut sum = 0.0;
    // The window of sample i is [i - half, i + width - half), cut to the record.
    let mut hi = 0;
    let mut lo = 0;
    for i in 0..n {
        let want_hi = (i + width - half).min(n);
        while hi < want_hi {
            sum += slope.at(hi).powi(2);
            hi += 1;
        }
        let want_lo = i.saturating_sub(half);
        while lo < want_lo {
            sum -= slope.at(lo).powi(2);
            lo += 1;
        }
        out.push((sum.max(0.0) / (hi - lo) as f64).sqrt());
    }
    out
}

/// Local maxima of the envelope that are the largest within ±100 ms, with the largest slope
/// magnitude within ±75 ms of them.
fn candidates(envelope: &[f64], slope: &Slope<'_>, rate_hz: f64) -> Vec<Candidate> {
    let n = envelope.len();
    let half = samples_in(100.0, rate_hz);
    let slope_half = samples_in(75.0, rate_hz);
    let mut out = Vec::new();
    let mut i = 1;
    while i + 1 < n {
        let v = envelope[i];
        if v > envelope[i - 1] && v >= envelope[i + 1] && v > 0.0 {
            let lo = i.saturating_sub(half);
            let hi = (i + half + 1).min(n);
            if envelope[lo..hi].iter().all(|&w| w <= v) {
                let slo = i.saturating_sub(slope_half);
                let shi = (i + slope_half + 1).min(n);
                let max_slope = (slo..shi).fold(0.0_f64, |m, k| m.max(slope.at(k).abs()));
                out.push(Candidate {
                    at: i,
                    level: v,
                    slope: max_slope,
                });
                // Nothing else can be the largest within this window.
                i += half;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// Initial signal and noise levels from the first seconds: the signal level from the median of
/// per-second maxima, the noise level from the median envelope.
fn initial_levels(envelope: &[f64], rate_hz: f64) -> (f64, f64) {
    let second = samples_in(1000.0, rate_hz);
    let learn = envelope.len().min(8 * second);
    let mut maxima: Vec<f64> = envelope[..learn]
        .chunks(second)
        .filter(|c| c.len() * 2 >= second || learn < second)
        .map(|c| c.iter().copied().fold(0.0, f64::max))
        .collect();
    let mut all: Vec<f64> = envelope[..learn].to_vec();
    let signal = 0.6 * median(&mut maxima).unwrap_or(0.0);
    let noise = median(&mut all).unwrap_or(0.0);
    (signal, noise)
}

pub(crate) fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mid = values.len() / 2;
    let (_, m, _) = values.select_nth_unstable_by(mid, f64::total_cmp);
    Some(*m)
}

/// The adaptive-threshold decision over the candidates, in time order.
fn select(candidates: &[Candidate], envelope: &[f64], rate_hz: f64) -> Vec<Candidate> {
    let refractory = samples_in(200.0, rate_hz);
    let t_wave_window = samples_in(360.0, rate_hz);
    let (mut spk, mut npk) = initial_levels(envelope, rate_hz);
    let mut rr_recent: Vec<f64> = Vec::with_capacity(8);
    let mut beats: Vec<Candidate> = Vec::new();
    // Candidates refused since the last beat, for the search back.
    let mut refused: Vec<Candidate> = Vec::new();

    let threshold = |spk: f64, npk: f64| npk + 0.25 * (spk - npk);
    let rr_average = |recent: &[f64]| {
        if recent.is_empty() {
            rate_hz
        } else {
            recent.iter().sum::<f64>() / recent.len() as f64
        }
    };

    let relearn_after = samples_in(3000.0, rate_hz);
    let mut last_relearn = 0;
    let keep_refused = samples_in(5000.0, rate_hz);
    for &c in candidates {
        // The search back looks at most 5 s back: older refused candidates are dropped, which
        // keeps a long stretch without beats linear in time.
        if refused.len() > 64 {
            refused.retain(|r| r.at + keep_refused >= c.at);
        }
        // No beat for 3 s: the levels may have been learnt on an artefact or before a drop in
        // amplitude. Learn them again from the largest candidate of the last 3 s, at most once
        // a second, until beats are found again.
        let since = beats.last().map_or(c.at, |last| c.at - last.at);
        if since > relearn_after && c.at > last_relearn + relearn_after / 3 {
            let recent = refused
                .iter()
                .filter(|r| r.at + relearn_after >= c.at)
                .map(|r| r.level)
                .fold(c.level, f64::max);
            spk = recent;
            npk = 0.125 * recent;
            last_relearn = c.at;
        }
        if let Some(last) = beats.last().copied() {
            if c.at < last.at + refractory {
                continue;
            }
            // Search back: a gap longer than 1.66 average RR may hide a smaller beat.
            let rr_avg = rr_average(&rr_recent);
            if (c.at - last.at) as f64 > 1.66 * rr_avg {
                let low = 0.5 * threshold(spk, npk);
                let found = refused
                    .iter()
                    .filter(|r| r.at >= last.at + refractory && r.at + refractory <= c.at)
                    .filter(|r| r.level > low)
                    .filter(|r| !(r.at < last.at + t_wave_window && r.slope < 0.5 * last.slope))
                    .max_by(|a, b| a.level.total_cmp(&b.level))
                    .copied();
                if let Some(found) = found {
                    spk = 0.25 * found.level + 0.75 * spk;
                    push_rr(&mut rr_recent, (found.at - last.at) as f64);
                    beats.push(found);
                    refused.clear();
                }
            }
        }
        let last = beats.last().copied();
        if let Some(last) = last
            && c.at < last.at + refractory
        {
            continue;
        }
        if c.level > threshold(spk, npk) {
            let is_t_wave = last
                .is_some_and(|last| c.at < last.at + t_wave_window && c.slope < 0.5 * last.slope);
            if is_t_wave {
                npk = 0.125 * c.level + 0.875 * npk;
                refused.push(c);
            } else {
                spk = 0.125 * c.level + 0.875 * spk;
                if let Some(last) = last {
                    push_rr(&mut rr_recent, (c.at - last.at) as f64);
                }
                beats.push(c);
                refused.clear();
            }
        } else {
            npk = 0.125 * c.level + 0.875 * npk;
            refused.push(c);
        }
    }
    // A final search back over the tail of the record.
    if let Some(last) = beats.last().copied() {
        let rr_avg = rr_average(&rr_recent);
        if (envelope.len() - last.at) as f64 > 1.66 * rr_avg {
            let low = 0.5 * threshold(spk, npk);
            let found = refused
                .iter()
                .filter(|r| r.at >= last.at + refractory && r.level > low)
                .filter(|r| !(r.at < last.at + t_wave_window && r.slope < 0.5 * last.slope))
                .max_by(|a, b| a.level.total_cmp(&b.level))
                .copied();
            if let Some(found) = found {
                beats.push(found);
            }
        }
    }
    beats
}

fn push_rr(recent: &mut Vec<f64>, rr: f64) {
    if recent.len() == 8 {
        recent.remove(0);
    }
    recent.push(rr);
}

/// Moves each detection to the largest absolute value of the wide-band signal within ±80 ms,
/// keeping the detections at least 200 ms apart.
fn refine(peaks: &[Candidate], wide: &[f64], rate_hz: f64) -> Vec<usize> {
    let half = samples_in(80.0, rate_hz);
    let refractory = samples_in(200.0, rate_hz);
    let n = wide.len();
    let mut beats: Vec<usize> = Vec::with_capacity(peaks.len());
    for p in peaks {
        let lo = p.at.saturating_sub(half);
        let hi = (p.at + half + 1).min(n);
        let mut best = p.at.min(n.saturating_sub(1));
        let mut best_value = f64::NEG_INFINITY;
        for (i, v) in wide[lo..hi].iter().enumerate() {
            if v.abs() > best_value {
                best_value = v.abs();
                best = lo + i;
            }
        }
        match beats.last() {
            Some(&last) if best < last + refractory => {}
            _ => beats.push(best),
        }
    }
    beats
}
