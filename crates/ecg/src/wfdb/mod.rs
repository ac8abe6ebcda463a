//! PhysioNet's WFDB format: a text header (`.hea`), binary signal files (`.dat`, formats 212,
//! 16, 61, 80 and 160, several signals interleaved) and MIT-format annotation files (`.atr`).
//! Only bytes and text in, values out: the caller reads the files.
//!
//! ```
//! let header = "rec 1 360\nrec.dat 16 200 16 0 0 0 0 II\n";
//! let dat = [0u8, 0, 200, 0, 0, 1];
//! let recording = carehub_ecg::wfdb::read(header, &dat, 0)?;
//! assert_eq!(recording.samples, vec![0.0, 1.0, 1.28]);
//! assert_eq!(recording.lead_name, "II");
//! # Ok::<(), carehub_ecg::wfdb::WfdbError>(())
//! ```

mod annotation;
mod header;

pub use annotation::{Annotation, AnnotationCode, read_annotations, write_annotations};
pub use header::{DEFAULT_GAIN, Header, SignalFormat, SignalSpec};

use crate::Recording;

/// Why a WFDB record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WfdbError {
    /// The header is malformed.
    #[error("header line {line}: {message}")]
    Header {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A valid WFDB feature this reader does not handle.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The requested lead does not exist.
    #[error("lead {lead} requested, the record has {count}")]
    NoSuchLead {
        /// The lead asked for.
        lead: usize,
        /// Leads in the record.
        count: usize,
    },
    /// The signal file is shorter than the header says.
    #[error("signal file holds {found} samples per signal, the header announces {expected}")]
    Truncated {
        /// Samples announced.
        expected: usize,
        /// Samples present.
        found: usize,
    },
    /// The annotation file is malformed.
    #[error("annotation file: {0}")]
    Annotation(String),
}

/// Reads one lead: parses `header_text`, decodes `dat` (the lead's signal file, see
/// [`Header::signal_file`]) and converts to physical units. Invalid samples (the format's
/// smallest value) repeat the previous valid sample (physical 0 at the start).
///
/// # Errors
/// See [`WfdbError`].
pub fn read(header_text: &str, dat: &[u8], lead: usize) -> Result<Recording, WfdbError> {
    let header = Header::parse(header_text)?;
    read_lead(&header, dat, lead)
}

/// Like [`read`], with a header already parsed.
///
/// # Errors
/// See [`WfdbError`].
pub fn read_lead(header: &Header, dat: &[u8], lead: usize) -> Result<Recording, WfdbError> {
    let spec = header.signals.get(lead).ok_or(WfdbError::NoSuchLead {
        lead,
        count: header.signals.len(),
    })?;
    let (invalid, _) = spec.format.range();
    let mut previous = 0.0;
    let samples = decode_map(header, dat, lead, |adc| {
        if adc != invalid {
            previous = spec.to_physical(adc);
        }
        previous
    })?;
    Ok(Recording {
        samples,
        sampling_rate_hz: header.sampling_frequency_hz * spec.samples_per_frame as f64,
        lead_name: spec.description.clone(),
        lead_count: header.signals.len(),
    })
}

/// The stored (ADC) samples of signal `lead`, decoded from `dat`, its signal file, with skew
/// applied. Signals sharing the file are interleaved frame by frame in header order.
///
/// # Errors
/// See [`WfdbError`].
pub fn decode_signal(header: &Header, dat: &[u8], lead: usize) -> Result<Vec<i32>, WfdbError> {
    decode_map(header, dat, lead, |adc| adc)
}

/// Decodes signal `lead` through `map`, in one pass and one allocation.
fn decode_map<T>(
    header: &Header,
    dat: &[u8],
    lead: usize,
    mut map: impl FnMut(i32) -> T,
) -> Result<Vec<T>, WfdbError> {
    let spec = header.signals.get(lead).ok_or(WfdbError::NoSuchLead {
        lead,
        count: header.signals.len(),
    })?;
    if spec.file_name == "~" {
        return Err(WfdbError::Unsupported(
            "null signal (file name ~)".to_owned(),
        ));
    }
    // The signals stored in this file: consecutive header entries with the same file name.
    let group: Vec<usize> = (0..header.signals.len())
        .filter(|&i| header.signals[i].file_name == spec.file_name)
        .collect();
    let format = spec.format;
    let offset = spec.byte_offset;
    if group
        .iter()
        .any(|&i| header.signals[i].format != format || header.signals[i].byte_offset != offset)
    {
        return Err(WfdbError::Unsupported(
            "signals of one file with different formats or byte offsets".to_owned(),
        ));
    }
    let frame: usize = group
        .iter()
        .map(|&i| header.signals[i].samples_per_frame)
        .sum();
    let position: usize = group
        .iter()
        .take_while(|&&i| i != lead)
        .map(|&i| header.signals[i].samples_per_frame)
        .sum();
    let bytes = dat.get(offset..).unwrap_or_default();
    let frames_present = stored_samples(format, bytes.len()) / frame.max(1);
    let max_skew = group
        .iter()
        .map(|&i| header.signals[i].skew)
        .max()
        .unwrap_or(0);
    let frames = match header.sample_count {
        Some(expected) => {
            if frames_present < expected.saturating_add(max_skew) {
                return Err(WfdbError::Truncated {
                    expected,
                    found: frames_present.saturating_sub(max_skew),
                });
            }
            expected
        }
        None => frames_present.saturating_sub(max_skew),
    };
    let spf = spec.samples_per_frame;
    let mut out = Vec::with_capacity(frames * spf);
    for f in 0..frames {
        let start = (f + spec.skew) * frame + position;
        out.extend((start..start + spf).map(|k| map(sample_at(format, bytes, k))));
    }
    Ok(out)
}

/// How many whole samples `len` bytes of a format hold (a 212 group cut after two bytes
/// holds one).
fn stored_samples(format: SignalFormat, len: usize) -> usize {
    match format {
        SignalFormat::Format80 => len,
        SignalFormat::Format212 => len / 3 * 2 + usize::from(len % 3 == 2),
        _ => len / 2,
    }
}

/// Sample `k` of a byte stream, `k` below [`stored_samples`]; decoding only the lead asked
/// for, without unpacking the others.
#[inline]
fn sample_at(format: SignalFormat, bytes: &[u8], k: usize) -> i32 {
    match format {
        SignalFormat::Format80 => i32::from(bytes[k]) - 128,
        SignalFormat::Format16 => i32::from(i16::from_le_bytes([bytes[2 * k], bytes[2 * k + 1]])),
        SignalFormat::Format61 => i32::from(i16::from_be_bytes([bytes[2 * k], bytes[2 * k + 1]])),
        SignalFormat::Format160 => {
            i32::from(u16::from_le_bytes([bytes[2 * k], bytes[2 * k + 1]])) - 32768
        }
        SignalFormat::Format212 => {
            let g = 3 * (k / 2);
            let v = if k.is_multiple_of(2) {
                i32::from(bytes[g]) | (i32::from(bytes[g + 1] & 0x0f) << 8)
            } else {
                i32::from(bytes[g + 2]) | (i32::from(bytes[g + 1] & 0xf0) << 4)
            };
            if v >= 2048 { v - 4096 } else { v }
        }
    }
}

#[cfg(test)]
/// Decodes a whole byte stream of one format into samples (a trailing partial group is
/// decoded as far as it goes, as the WFDB library does for format 212's odd last sample).
fn decode_samples(format: SignalFormat, bytes: &[u8]) -> Vec<i32> {
    match format {
        SignalFormat::Format80 => bytes.iter().map(|&b| i32::from(b) - 128).collect(),
        SignalFormat::Format16 => bytes
            .chunks_exact(2)
            .map(|c| i32::from(i16::from_le_bytes([c[0], c[1]])))
            .collect(),
        SignalFormat::Format61 => bytes
            .chunks_exact(2)
            .map(|c| i32::from(i16::from_be_bytes([c[0], c[1]])))
            .collect(),
        SignalFormat::Format160 => bytes
            .chunks_exact(2)
            .map(|c| i32::from(u16::from_le_bytes([c[0], c[1]])) - 32768)
            .collect(),
        SignalFormat::Format212 => {
            let mut out = Vec::with_capacity(bytes.len() * 2 / 3 + 1);
            let twelve = |v: i32| if v >= 2048 { v - 4096 } else { v };
            for c in bytes.chunks(3) {
                match *c {
                    [b0, b1, b2] => {
                        out.push(twelve(i32::from(b0) | (i32::from(b1 & 0x0f) << 8)));
                        out.push(twelve(i32::from(b2) | (i32::from(b1 & 0xf0) << 4)));
                    }
                    [b0, b1] => out.push(twelve(i32::from(b0) | (i32::from(b1 & 0x0f) << 8))),
                    _ => {}
                }
            }
            out
        }
    }
}

/// Encodes samples (already clipped to the format's range) in one format; an odd count in
/// format 212 ends with two bytes, as the WFDB library writes it.
pub fn encode_samples(format: SignalFormat, samples: &[i32]) -> Vec<u8> {
    let (lo, hi) = format.range();
    let clip = |v: i32| v.clamp(lo, hi);
    match format {
        SignalFormat::Format80 => samples.iter().map(|&v| (clip(v) + 128) as u8).collect(),
        SignalFormat::Format16 => samples
            .iter()
            .flat_map(|&v| (clip(v) as i16).to_le_bytes())
            .collect(),
        SignalFormat::Format61 => samples
            .iter()
            .flat_map(|&v| (clip(v) as i16).to_be_bytes())
            .collect(),
        SignalFormat::Format160 => samples
            .iter()
            .flat_map(|&v| ((clip(v) + 32768) as u16).to_le_bytes())
            .collect(),
        SignalFormat::Format212 => {
            let mut out = Vec::with_capacity(samples.len() * 3 / 2 + 2);
            for pair in samples.chunks(2) {
                let a = (clip(pair[0]) & 0x0fff) as u16;
                out.push((a & 0xff) as u8);
                match pair.get(1) {
                    Some(&b) => {
                        let b = (clip(b) & 0x0fff) as u16;
                        out.push((((a >> 8) & 0x0f) | ((b >> 4) & 0xf0)) as u8);
                        out.push((b & 0xff) as u8);
                    }
                    None => out.push(((a >> 8) & 0x0f) as u8),
                }
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_212_round_trips_negative_and_odd_counts() {
        for n in 0..7 {
            let samples: Vec<i32> = (0..n).map(|i| (i * 977 % 4095) - 2047).collect();
            let bytes = encode_samples(SignalFormat::Format212, &samples);
            assert_eq!(decode_samples(SignalFormat::Format212, &bytes), samples);
        }
    }

    #[test]
    fn format_212_matches_the_specification_example() {
        // Samples 0x123 and 0x456 → bytes 0x23, 0x41, 0x56.
        assert_eq!(
            encode_samples(SignalFormat::Format212, &[0x123, 0x456]),
            vec![0x23, 0x41, 0x56]
        );
        assert_eq!(
            decode_samples(SignalFormat::Format212, &[0xff, 0xff, 0xff]),
            vec![-1, -1]
        );
    }

    #[test]
    fn one_sample_decodes_as_the_whole_stream_does() {
        let bytes: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        for format in [
            SignalFormat::Format80,
            SignalFormat::Format16,
            SignalFormat::Format61,
            SignalFormat::Format160,
            SignalFormat::Format212,
        ] {
            for len in [0, 1, 2, 3, 4, 5, 511, 512] {
                let all = decode_samples(format, &bytes[..len]);
                assert_eq!(all.len(), stored_samples(format, len), "{format:?} {len}");
                for (k, v) in all.iter().enumerate() {
                    assert_eq!(sample_at(format, &bytes[..len], k), *v);
                }
            }
        }
    }

    #[test]
    fn sixteen_bit_formats_round_trip() {
        let samples = vec![-32767, -1, 0, 1, 32767];
        for format in [
            SignalFormat::Format16,
            SignalFormat::Format61,
            SignalFormat::Format160,
        ] {
            let bytes = encode_samples(format, &samples);
            assert_eq!(decode_samples(format, &bytes), samples, "{format:?}");
        }
        let eight = vec![-127, 0, 127];
        let bytes = encode_samples(SignalFormat::Format80, &eight);
        assert_eq!(decode_samples(SignalFormat::Format80, &bytes), eight);
    }
}
