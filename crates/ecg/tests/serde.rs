//! The serialized form of an analysis (feature `serde`).
#![cfg(feature = "serde")]

use carehub_ecg::{Analysis, Rhythm, analyze};

#[test]
fn rhythm_classes_serialize_in_snake_case() {
    for rhythm in [
        Rhythm::NormalSinus,
        Rhythm::SinusBradycardia,
        Rhythm::SinusTachycardia,
        Rhythm::AtrialFibrillationSuspected,
        Rhythm::IrregularOther,
        Rhythm::Undetermined,
    ] {
        let json = serde_json::to_string(&rhythm).expect("serializable");
        assert_eq!(json, format!("\"{}\"", rhythm.as_str()));
        let back: Rhythm = serde_json::from_str(&json).expect("deserializable");
        assert_eq!(back, rhythm);
    }
}

#[test]
fn an_analysis_round_trips_through_json() {
    let rate = 250.0;
    let samples: Vec<f64> = (0..(20.0 * rate) as usize)
        .map(|i| {
            let t = (i % 200) as f64 / rate;
            (-((t - 0.4) / 0.012).powi(2) / 2.0).exp()
        })
        .collect();
    let analysis = analyze(&samples, rate).expect("valid");
    let json = serde_json::to_value(&analysis).expect("serializable");
    assert_eq!(json["algorithm_version"], "carehub-ecg 1.0");
    assert_eq!(json["rhythm"], "normal_sinus");
    assert!(json["rr"]["pnn50"].is_number());
    let back: Analysis = serde_json::from_value(json).expect("deserializable");
    assert_eq!(back, analysis);
}
