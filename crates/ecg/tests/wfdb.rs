//! WFDB reading: round trips through the writers, header quirks, errors, hostile bytes.

use carehub_ecg::wfdb::{self, Header, SignalFormat, WfdbError};

#[test]
fn header_quirks_are_read_as_the_wfdb_library_reads_them() {
    let text = "\u{feff}# a comment before the record line\n\n\
        100 3 360/720(12) 5 10:20:30 01/02/2003\n\
        # a comment between signal lines\n\
        100.dat 212 200(1024)/uV 11 1024 995 -22131 0 MLII\n\
        \n\
        100.dat 212 0 12 0 -3 1 0 V5 with spaces\n\
        100.dat 212\n\
        #Age: 69 Sex: M\n";
    let header = Header::parse(text).expect("valid header");
    assert_eq!(header.record_name, "100");
    assert!((header.sampling_frequency_hz - 360.0).abs() < f64::EPSILON);
    assert_eq!(header.counter_frequency_hz, Some(720.0));
    assert_eq!(header.base_counter, Some(12.0));
    assert_eq!(header.sample_count, Some(5));
    assert_eq!(header.base_time.as_deref(), Some("10:20:30"));
    assert_eq!(header.base_date.as_deref(), Some("01/02/2003"));
    assert_eq!(header.comments.len(), 3);
    let [a, b, c] = &header.signals[..] else {
        panic!("three signals expected");
    };
    assert_eq!((a.gain, a.baseline, a.units.as_str()), (200.0, 1024, "uV"));
    assert_eq!((a.adc_resolution, a.adc_zero), (11, 1024));
    assert_eq!((a.initial_value, a.checksum), (Some(995), Some(-22131)));
    assert_eq!(a.description, "MLII");
    // Gain 0 means the default 200; baseline defaults to the ADC zero; units to mV.
    assert_eq!((b.gain, b.baseline, b.units.as_str()), (200.0, 0, "mV"));
    assert_eq!(b.description, "V5 with spaces");
    assert_eq!(
        (c.gain, c.adc_resolution, c.description.as_str()),
        (200.0, 12, "")
    );
    assert_eq!(header.signal_file(0), Some("100.dat"));
    assert_eq!(header.signal_files(), vec!["100.dat"]);
}

#[test]
fn a_minimal_header_defaults_to_250_hz() {
    let header = Header::parse("rec 1\nrec.dat 16\n").expect("valid");
    assert!((header.sampling_frequency_hz - 250.0).abs() < f64::EPSILON);
    assert_eq!(header.sample_count, None);
    assert_eq!(header.signals[0].format, SignalFormat::Format16);
}

#[test]
fn skew_byte_offset_and_format_80_are_applied() {
    // Two signals in format 80 after a 4-byte prefix; signal 1 is skewed by one frame.
    let header = "r 2 100 3\nr.dat 80+4 10 8 0 0 0 0 a\nr.dat 80:1+4 10 8 0 0 0 0 b\n";
    let dat = [9, 9, 9, 9, 128, 0, 138, 130, 148, 140, 158, 150];
    let a = wfdb::read(header, &dat, 0).expect("lead a");
    let b = wfdb::read(header, &dat, 1).expect("lead b");
    assert_eq!(a.samples, vec![0.0, 1.0, 2.0]);
    assert_eq!(b.samples, vec![0.2, 1.2, 2.2]);
    assert_eq!((a.lead_name.as_str(), a.lead_count), ("a", 2));
}

#[test]
fn signals_in_separate_files_decode_from_their_own_file() {
    let header = "r 2 500 2\nr_1.dat 16 100 16 0 0 0 0 I\nr_2.dat 16 100 16 0 0 0 0 II\n";
    let second = [100u8, 0, 156, 255];
    let lead = wfdb::read(header, &second, 1).expect("lead II");
    assert_eq!(lead.samples, vec![1.0, -1.0]);
    assert_eq!(
        Header::parse(header).expect("valid").signal_file(1),
        Some("r_2.dat")
    );
}

#[test]
fn malformed_headers_are_refused_with_the_line() {
    let cases = [
        ("", "no record line"),
        ("r x 360\n", "number of signals"),
        ("r 2 360\nr.dat 212\n", "2 signals"),
        ("r 1 fast\nr.dat 212\n", "sampling frequency"),
        ("r 1 360 -5\nr.dat 212\n", "number of samples"),
        ("r 1 360\nr.dat\n", "format is missing"),
        ("r 1 360\nr.dat 212 abc\n", "gain"),
        ("r 1 360\nr.dat 212 200(x)\n", "baseline"),
        ("r 1 360\nr.dat 212:q\n", "skew"),
    ];
    for (text, needle) in cases {
        match Header::parse(text) {
            Err(e @ WfdbError::Header { .. }) => {
                assert!(e.to_string().contains(needle), "{text:?}: {e}");
            }
            other => panic!("{text:?}: {other:?}"),
        }
    }
    assert!(matches!(
        Header::parse("r 1 360\nr.dat 310\n"),
        Err(WfdbError::Unsupported(_))
    ));
    assert!(matches!(
        Header::parse("r/3 1 360\n"),
        Err(WfdbError::Unsupported(_))
    ));
}

#[test]
fn a_short_signal_file_and_a_missing_lead_are_errors() {
    let header = "r 1 360 10\nr.dat 16\n";
    assert_eq!(
        wfdb::read(header, &[0; 6], 0),
        Err(WfdbError::Truncated {
            expected: 10,
            found: 3
        })
    );
    assert_eq!(
        wfdb::read(header, &[0; 20], 1),
        Err(WfdbError::NoSuchLead { lead: 1, count: 1 })
    );
}

#[test]
fn invalid_samples_repeat_the_previous_value() {
    // Format 16: 200, -32768 (invalid), 400.
    let dat = [200u8, 0, 0, 128, 144, 1];
    let lead = wfdb::read("r 1 250\nr.dat 16\n", &dat, 0).expect("valid");
    assert_eq!(lead.samples, vec![1.0, 1.0, 2.0]);
}

/// A small deterministic generator for hostile input.
fn bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 24) as u8
        })
        .collect()
}

#[test]
fn random_and_truncated_input_never_panics() {
    let header = "100 2 360 650\n100.dat 212 200 11 1024 995 0 0 MLII\n100.dat 212 200 11 1024 1011 0 0 V5\n";
    for seed in 0..300u64 {
        let dat = bytes(seed, (seed as usize * 7) % 2000);
        let _ = wfdb::read(header, &dat, (seed % 3) as usize);
        let _ = wfdb::read_annotations(&dat);
        // Random text as a header, and every prefix of a valid header.
        let text = String::from_utf8_lossy(&bytes(seed + 1000, 200)).into_owned();
        let _ = wfdb::read(&text, &dat, 0);
        let _ = carehub_ecg::csv::read(&text, Some(250.0));
        let _ = carehub_ecg::csv::read(&text, None);
        let cut = (seed as usize * 13) % header.len();
        if header.is_char_boundary(cut) {
            let _ = wfdb::read(&header[..cut], &dat, 0);
        }
        // Printable garbage in header fields.
        let fields = [
            "r",
            "2",
            "1e400",
            "-1",
            "360/",
            "(",
            "212x0",
            "16+99999999999999999999",
            "~",
        ];
        let garbled: Vec<&str> = (0..8)
            .map(|k| fields[((seed as usize) * 31 + k * 7) % fields.len()])
            .collect();
        let text = format!(
            "{}\n{}\n{}\n",
            garbled[..3].join(" "),
            garbled[3..6].join(" "),
            garbled[6..].join(" ")
        );
        let _ = wfdb::read(&text, &dat, 0);
        if let Ok(recording) = wfdb::read(header, &dat, 0) {
            let _ = carehub_ecg::analyze(&recording.samples, recording.sampling_rate_hz);
        }
    }
}

#[cfg(feature = "synth")]
mod round_trip {
    use super::*;
    use carehub_ecg::synth::{self, SynthConfig};

    #[test]
    fn formats_212_and_16_round_trip_with_odd_counts_and_negative_values() {
        let leads = [
            vec![-1.5, -0.005, 0.0, 0.004, 2.5, -10.0, 9.99],
            vec![0.1, -0.2, 0.3, -0.4, 0.5, -0.6, 0.7],
            vec![-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0],
        ];
        for (format, step) in [
            (SignalFormat::Format212, 1.0 / 200.0),
            (SignalFormat::Format16, 1.0 / 1000.0),
        ] {
            for n in [1, 2, 5, 7] {
                let cut: Vec<Vec<f64>> = leads.iter().map(|l| l[..n].to_vec()).collect();
                let (header, dat) = synth::to_wfdb("rt", &cut, 360.0, format);
                let parsed = Header::parse(&header).expect("valid");
                assert_eq!(parsed.signal_file(0), Some("rt.dat"));
                assert_eq!(parsed.sample_count, Some(n));
                for (lead, original) in cut.iter().enumerate() {
                    let read = wfdb::read(&header, &dat, lead).expect("valid");
                    assert_eq!(read.samples.len(), n);
                    assert_eq!(read.lead_count, 3);
                    assert!((read.sampling_rate_hz - 360.0).abs() < f64::EPSILON);
                    for (a, b) in read.samples.iter().zip(original) {
                        // Format 212 clips at ±2047/200 mV; the rest is within half a step.
                        let b = b.clamp(-2047.0 / 200.0, 2047.0 / 200.0);
                        assert!((a - b).abs() <= step / 2.0 + 1e-12, "{format:?} {a} vs {b}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_synthetic_record_round_trips_and_analyses_the_same() {
        let record = synth::generate(&SynthConfig {
            leads: 2,
            duration_secs: 20.0,
            noise_mv: 0.02,
            ..SynthConfig::default()
        })
        .expect("valid");
        let (header, dat) = record.to_wfdb("syn", SignalFormat::Format212);
        let lead = wfdb::read(&header, &dat, 1).expect("valid");
        assert_eq!(lead.lead_name, "V1");
        let direct = carehub_ecg::analyze(&record.leads[1], 360.0).expect("valid");
        let via_wfdb = carehub_ecg::analyze(&lead.samples, lead.sampling_rate_hz).expect("valid");
        assert_eq!(direct.beats.len(), via_wfdb.beats.len());
        let atr = wfdb::write_annotations(&record.annotations());
        let annotations = wfdb::read_annotations(&atr).expect("valid");
        let reference: Vec<usize> = annotations
            .iter()
            .filter(|a| a.code.is_beat())
            .map(|a| a.sample as usize)
            .collect();
        assert_eq!(reference, record.beats);
    }

    #[test]
    fn csv_in_both_shapes_round_trips() {
        let record = synth::generate(&SynthConfig {
            leads: 2,
            duration_secs: 5.0,
            sampling_rate_hz: 250.0,
            ..SynthConfig::default()
        })
        .expect("valid");
        let with_time = synth::to_csv(&record.leads, 250.0, true);
        let read = carehub_ecg::csv::read(&with_time, None).expect("valid");
        assert!((read.sampling_rate_hz - 250.0).abs() < 1e-6);
        assert_eq!(read.lead_name, "ECG1");
        assert_eq!(read.lead_count, 2);
        assert_eq!(read.samples.len(), record.leads[0].len());
        let single = synth::to_csv(&record.leads[..1], 250.0, false);
        let read = carehub_ecg::csv::read(&single, Some(250.0)).expect("valid");
        assert!(
            read.samples
                .iter()
                .zip(&record.leads[0])
                .all(|(a, b)| (a - b).abs() < 1e-5)
        );
    }
}
