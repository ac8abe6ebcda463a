//! ECG recordings attached to lab orders, analysed by `carehub-ecg` in a job after upload.
//! The analysis is decision support for the doctor, not a diagnosis.

use jiff::Timestamp;

use carehub_ecg::{Analysis, Recording};

use super::{LabFile, LabFileKind};
use crate::kernel::{LabFileId, LabOrderId};

/// How much of the recording is kept with the analysis for drawing: its first seconds.
pub const TRACE_SECONDS: f64 = 10.0;

/// The stored outcome of analysing an order's latest recording.
#[derive(Debug, Clone, PartialEq)]
pub struct EcgRecord {
    pub order_id: LabOrderId,
    /// The recording's header (WFDB) or only file (CSV).
    pub file_id: LabFileId,
    pub analyzed_at: Timestamp,
    pub outcome: EcgOutcome,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EcgOutcome {
    Analysed {
        analysis: Analysis,
        trace: EcgTrace,
    },
    /// The recording could not be read or analysed; why, in words for the laboratory.
    Failed {
        reason: String,
    },
}

/// The first [`TRACE_SECONDS`] of the analysed lead, for the page to draw with the beats.
#[derive(Debug, Clone, PartialEq)]
pub struct EcgTrace {
    pub sampling_rate_hz: f64,
    /// In the recording's physical unit (millivolts for PhysioNet's records).
    pub samples: Vec<f32>,
}

impl EcgTrace {
    pub fn of(recording: &Recording) -> Self {
        // Bounded by the accepted rates (at most 1000 Hz): at most 10,000 samples.
        let take = (recording.sampling_rate_hz * TRACE_SECONDS).ceil();
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let take = take.max(0.0) as usize;
        Self {
            sampling_rate_hz: recording.sampling_rate_hz,
            #[allow(clippy::cast_possible_truncation)]
            samples: recording
                .samples
                .iter()
                .take(take)
                .map(|s| *s as f32)
                .collect(),
        }
    }
}

/// Reads a recording from its files' bytes: a WFDB header with its signal file, or a CSV with
/// its sampling rate. The first lead is analysed.
///
/// # Errors
/// Why it cannot be read, in words for whoever uploaded it.
pub fn read_recording(
    main: &LabFile,
    main_bytes: &[u8],
    signal_bytes: Option<&[u8]>,
) -> Result<Recording, String> {
    match main.kind {
        LabFileKind::EcgHeader => {
            let header = std::str::from_utf8(main_bytes)
                .map_err(|_| "the WFDB header is not text".to_owned())?;
            let signal =
                signal_bytes.ok_or_else(|| "the WFDB signal file is missing".to_owned())?;
            carehub_ecg::wfdb::read(header, signal, 0).map_err(|e| e.to_string())
        }
        LabFileKind::EcgCsv => {
            let text =
                std::str::from_utf8(main_bytes).map_err(|_| "the CSV is not text".to_owned())?;
            carehub_ecg::csv::read(text, main.sampling_rate_hz).map_err(|e| e.to_string())
        }
        LabFileKind::Pdf | LabFileKind::Image | LabFileKind::EcgSignal => {
            Err("not an ECG recording".to_owned())
        }
    }
}

/// Analyses a recording read by [`read_recording`].
///
/// # Errors
/// Why it cannot be analysed.
pub fn analyse(recording: &Recording) -> Result<(Analysis, EcgTrace), String> {
    let analysis = carehub_ecg::analyze(&recording.samples, recording.sampling_rate_hz)
        .map_err(|e| e.to_string())?;
    Ok((analysis, EcgTrace::of(recording)))
}

/// The shortest recording analysed, in seconds.
pub const MIN_RECORDING_SECONDS: f64 = 5.0;

/// Whether a recording can be analysed: a sampling rate from 100 to 1000 Hz and at least
/// [`MIN_RECORDING_SECONDS`] of samples.
///
/// # Errors
/// Why not, in words for whoever uploaded it.
pub fn analysable(recording: &Recording) -> Result<(), &'static str> {
    if !(100.0..=1000.0).contains(&recording.sampling_rate_hz) {
        return Err("the sampling rate must be from 100 to 1000 Hz");
    }
    #[allow(clippy::cast_precision_loss)]
    let seconds = recording.samples.len() as f64 / recording.sampling_rate_hz;
    if seconds < MIN_RECORDING_SECONDS {
        return Err("the recording must be at least 5 seconds long");
    }
    Ok(())
}
