//! Scoring a detector against reference beat annotations: beat-by-beat matching within a window
//! (as PhysioNet's `bxb` does with a 150 ms window), sensitivity and positive predictivity.

/// The result of matching detected beats against reference beats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BeatMatch {
    /// Reference beats with a detection within the window.
    pub true_positives: usize,
    /// Reference beats without one.
    pub false_negatives: usize,
    /// Detections matched to no reference beat.
    pub false_positives: usize,
}

impl BeatMatch {
    /// TP / (TP + FN), in 0..=1 (1 when there is no reference beat).
    pub fn sensitivity(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }

    /// TP / (TP + FP), in 0..=1 (1 when there is no detection).
    pub fn positive_predictivity(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }

    /// Adds another record's counts (gross statistics over several records).
    #[must_use]
    pub fn plus(self, other: Self) -> Self {
        Self {
            true_positives: self.true_positives + other.true_positives,
            false_negatives: self.false_negatives + other.false_negatives,
            false_positives: self.false_positives + other.false_positives,
        }
    }
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        1.0
    } else {
        part as f64 / whole as f64
    }
}

/// Matches `detected` against `reference` (both sample indices at `sampling_rate_hz`, in any
/// order): each reference beat takes the nearest unmatched detection within ±`window_ms`.
pub fn match_beats(
    reference: &[usize],
    detected: &[usize],
    sampling_rate_hz: f64,
    window_ms: f64,
) -> BeatMatch {
    match_beats_in(
        reference,
        detected,
        sampling_rate_hz,
        window_ms,
        0..usize::MAX,
    )
}

/// Like [`match_beats`], counting only the reference beats and the unmatched detections inside
/// `range` (e.g. without the first and last seconds), after matching over the whole record,
/// so that a beat just inside the range still matches a detection just outside it, as
/// PhysioNet's `bxb` does.
pub fn match_beats_in(
    reference: &[usize],
    detected: &[usize],
    sampling_rate_hz: f64,
    window_ms: f64,
    range: std::ops::Range<usize>,
) -> BeatMatch {
    let mut reference = reference.to_vec();
    reference.sort_unstable();
    let mut detected = detected.to_vec();
    detected.sort_unstable();
    let window = (window_ms * sampling_rate_hz / 1000.0).max(0.0);
    let mut used = vec![false; detected.len()];
    let mut result = BeatMatch {
        true_positives: 0,
        false_negatives: 0,
        false_positives: 0,
    };
    let mut start = 0;
    for &r in &reference {
        let rf = r as f64;
        while start < detected.len() && (detected[start] as f64) < rf - window {
            start += 1;
        }
        let best = (start..detected.len())
            .take_while(|&j| detected[j] as f64 <= rf + window)
            .filter(|&j| !used[j])
            .min_by(|&a, &b| {
                (detected[a] as f64 - rf)
                    .abs()
                    .total_cmp(&(detected[b] as f64 - rf).abs())
            });
        if let Some(j) = best {
            used[j] = true;
        }
        if range.contains(&r) {
            if best.is_some() {
                result.true_positives += 1;
            } else {
                result.false_negatives += 1;
            }
        }
    }
    result.false_positives = detected
        .iter()
        .zip(&used)
        .filter(|&(d, u)| !u && range.contains(d))
        .count();
    result
}

/// The beats within `[start, end)`, to leave out the edges of a record as the standard
/// evaluation does (e.g. the first 5 minutes in EC57's learning period, or a few seconds).
pub fn within(beats: &[usize], start: usize, end: usize) -> Vec<usize> {
    beats
        .iter()
        .copied()
        .filter(|&b| b >= start && b < end)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beats_within_the_window_match_and_the_rest_are_errors() {
        let reference = [100, 460, 820, 1180];
        let detected = [110, 455, 900, 1181, 1500];
        let m = match_beats(&reference, &detected, 360.0, 150.0);
        assert_eq!(m.true_positives, 3);
        assert_eq!(m.false_negatives, 1);
        assert_eq!(m.false_positives, 2);
        assert!((m.sensitivity() - 0.75).abs() < 1e-12);
        assert!((m.positive_predictivity() - 0.6).abs() < 1e-12);
    }

    #[test]
    fn a_beat_at_the_edge_of_the_range_still_matches_outside_it() {
        let m = match_beats_in(&[99, 500], &[101, 500], 360.0, 150.0, 100..1000);
        assert_eq!(
            (m.true_positives, m.false_negatives, m.false_positives),
            (1, 0, 0)
        );
        let m = match_beats_in(&[101, 500], &[99, 500], 360.0, 150.0, 100..1000);
        assert_eq!(
            (m.true_positives, m.false_negatives, m.false_positives),
            (2, 0, 0)
        );
    }

    #[test]
    fn one_detection_matches_one_reference_beat_only() {
        let m = match_beats(&[100, 120], &[110], 1000.0, 150.0);
        assert_eq!(m.true_positives, 1);
        assert_eq!(m.false_negatives, 1);
    }
}
