//! Signal quality in 0..=1 from how alike the beats are (correlation with the average beat),
//! how many RR intervals are physiologically plausible and how much of the record has beats.

use crate::detect::{median, samples_in};

/// Below this quality the rhythm is `undetermined` and no heart rate is reported.
pub(crate) const MIN_QUALITY: f64 = 0.5;

/// At most this many beats build the template (spread over the record).
const TEMPLATE_BEATS: usize = 600;

pub(crate) fn signal_quality(beats: &[usize], wide: &[f64], rate_hz: f64) -> f64 {
    if beats.len() < 3 {
        return 0.0;
    }
    let morphology = template_correlation(beats, wide, rate_hz);
    let plausible = plausible_rr_share(beats, rate_hz);
    let coverage = coverage(beats, wide.len(), rate_hz);
    (morphology * plausible * coverage).clamp(0.0, 1.0)
}

/// Median correlation (negative counted as 0) of each beat's ±100 ms with the average beat.
fn template_correlation(beats: &[usize], wide: &[f64], rate_hz: f64) -> f64 {
    let half = samples_in(100.0, rate_hz);
    let inside: Vec<usize> = beats
        .iter()
        .copied()
        .filter(|&b| b >= half && b + half < wide.len())
        .collect();
    if inside.len() < 3 {
        return 0.0;
    }
    let width = 2 * half + 1;
    let step = inside.len().div_ceil(TEMPLATE_BEATS);
    let mut template = vec![0.0; width];
    let mut used = 0.0;
    for &b in inside.iter().step_by(step) {
        for (t, v) in template.iter_mut().zip(&wide[b - half..=b + half]) {
            *t += v;
        }
        used += 1.0;
    }
    for t in &mut template {
        *t /= used;
    }
    let mut correlations: Vec<f64> = inside
        .iter()
        .map(|&b| correlation(&template, &wide[b - half..=b + half]).max(0.0))
        .collect();
    median(&mut correlations).unwrap_or(0.0)
}

fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let ma = a.iter().sum::<f64>() / n;
    let mb = b.iter().sum::<f64>() / n;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        let (dx, dy) = (x - ma, y - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    if saa <= 0.0 || sbb <= 0.0 {
        0.0
    } else {
        sab / (saa * sbb).sqrt()
    }
}

/// Share of RR intervals between 240 ms and 2.4 s (250 to 25 bpm) whose neighbour is within a
/// factor of 2.5 of them.
fn plausible_rr_share(beats: &[usize], rate_hz: f64) -> f64 {
    let rr: Vec<f64> = beats
        .windows(2)
        .map(|w| (w[1] - w[0]) as f64 / rate_hz)
        .collect();
    let plausible = rr
        .iter()
        .enumerate()
        .filter(|&(i, &r)| {
            let neighbour = if i > 0 {
                rr[i - 1]
            } else {
                rr.get(1).copied().unwrap_or(r)
            };
            (0.24..=2.4).contains(&r) && r / neighbour < 2.5 && neighbour / r < 2.5
        })
        .count();
    plausible as f64 / rr.len() as f64
}

/// Share of the record not inside a gap of more than 3 s without a beat (edges included).
fn coverage(beats: &[usize], len: usize, rate_hz: f64) -> f64 {
    let limit = 3.0 * rate_hz;
    let mut gaps = 0.0;
    let mut previous = 0;
    for &b in beats.iter().chain(std::iter::once(&len)) {
        let gap = b.saturating_sub(previous) as f64;
        if gap > limit {
            gaps += gap - limit;
        }
        previous = b;
    }
    (1.0 - gaps / len.max(1) as f64).clamp(0.0, 1.0)
}
