//! `carehub ecg analyze`: the server's ECG analysis on a file, from the command line.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context as _, bail};

use crate::routes::lab::ecg::{DISCLAIMER, EcgAnalysisView};

/// Reads and analyses `file` (a WFDB header with its signal file beside it, or a CSV), and
/// returns the report: JSON with the API's fields, or a few lines for people.
///
/// # Errors
/// When the file cannot be read, parsed or analysed.
pub fn analyze(
    file: &Path,
    sampling_rate: Option<f64>,
    lead: usize,
    json: bool,
) -> anyhow::Result<String> {
    let extension = file
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let read = |path: &Path| {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    };
    let recording = match extension.as_deref() {
        Some("hea") => {
            let header = String::from_utf8(read(file)?)
                .with_context(|| format!("{} is not text", file.display()))?;
            let parsed = carehub_ecg::wfdb::Header::parse(&header)
                .with_context(|| format!("cannot read the header {}", file.display()))?;
            let signal_name = parsed
                .signals
                .get(lead)
                .map(|s| s.file_name.clone())
                .with_context(|| format!("the record has no lead {lead}"))?;
            let signal_path = file.with_file_name(&signal_name);
            let signal = read(&signal_path)?;
            carehub_ecg::wfdb::read(&header, &signal, lead)
                .with_context(|| format!("cannot read the record {}", file.display()))?
        }
        Some("csv") => {
            let text = String::from_utf8(read(file)?)
                .with_context(|| format!("{} is not text", file.display()))?;
            carehub_ecg::csv::read(&text, sampling_rate)
                .with_context(|| format!("cannot read {}", file.display()))?
        }
        _ => bail!("give a WFDB header (.hea) or a CSV (.csv)"),
    };
    let analysis = carehub_ecg::analyze(&recording.samples, recording.sampling_rate_hz)
        .context("cannot analyse the recording")?;
    let view = EcgAnalysisView::from(analysis);
    if json {
        return Ok(serde_json::to_string_pretty(&view)?);
    }
    let mut out = String::new();
    let _ = writeln!(out, "rhythm:          {}", view.rhythm);
    match view.heart_rate_bpm {
        Some(rate) => {
            let _ = writeln!(out, "heart rate:      {rate:.0} bpm");
        }
        None => {
            let _ = writeln!(out, "heart rate:      -");
        }
    }
    let _ = writeln!(
        out,
        "beats:           {} in {:.1} s at {} Hz",
        view.beats.len(),
        view.duration_secs,
        view.sampling_rate_hz
    );
    if let Some(rr) = &view.rr {
        let _ = writeln!(
            out,
            "RR:              mean {:.0} ms, SDNN {:.0} ms, RMSSD {:.0} ms, pNN50 {:.1} %",
            rr.mean_ms, rr.sdnn_ms, rr.rmssd_ms, rr.pnn50
        );
    }
    let _ = writeln!(out, "ectopic beats:   {}", view.ectopic_beats);
    let _ = writeln!(out, "signal quality:  {:.2}", view.signal_quality);
    let _ = writeln!(out, "algorithm:       {}", view.algorithm_version);
    let _ = write!(out, "{DISCLAIMER}");
    Ok(out)
}
