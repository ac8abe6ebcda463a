//! Real test waveforms shipped in published packages (see tests/data/README.md).

use carehub_ecg::{Rhythm, analyze, csv};

/// AAMI EC13 test waveform 3a, "ventricular bigeminy", 720 Hz, as shipped in the sources of the
/// `qrs_detector` crate 0.2.0. EC13 specifies a heart rate of 80 bpm for it: 80 beats in the
/// 59.8 s (43 081 samples), alternating sinus and premature ventricular beats. There are no beat annotations:
/// the reference is the waveform's specification.
#[test]
fn aami_3a_ventricular_bigeminy_is_80_bpm_irregular_and_not_af() {
    let text = include_str!("data/aami3a.txt");
    let recording = csv::read(text, Some(720.0)).expect("one column of samples");
    assert_eq!(recording.samples.len(), 43_081);
    let analysis = analyze(&recording.samples, recording.sampling_rate_hz).expect("valid");

    assert_eq!(analysis.beats.len(), 80);
    let hr = analysis.heart_rate_bpm.expect("a rate");
    assert!((hr - 80.0).abs() < 1.0, "{hr}");
    // Bigeminy: RR intervals alternate short (coupled) and long (pause), each within 5 ms.
    let rr: Vec<usize> = analysis.beats.windows(2).map(|w| w[1] - w[0]).collect();
    let (short, long) = (rr[0].min(rr[1]), rr[0].max(rr[1]));
    for (i, r) in rr.iter().enumerate() {
        let expected = if (i % 2 == 0) == (rr[0] == short) {
            short
        } else {
            long
        };
        assert!(r.abs_diff(expected) <= 4, "interval {i}: {r} vs {expected}");
    }
    assert_eq!(analysis.rhythm, Rhythm::IrregularOther);
    // 40 premature beats; the first and last cannot be judged without both neighbours.
    assert!(analysis.ectopic_beats >= 37, "{}", analysis.ectopic_beats);
    assert!(analysis.signal_quality > 0.9);
    let median = analysis.median_heart_rate_bpm.expect("a rate");
    assert!((median - 80.0).abs() < 1.0, "{median}");
}
