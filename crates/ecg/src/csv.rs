//! Reading a lead from CSV text: one column of samples, or `time,value[,value...]` with the
//! time in seconds (the first value column is the lead). An optional header row names the
//! columns. Fields may be separated by commas, semicolons, tabs or spaces.

use crate::Recording;

/// Why a CSV text could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CsvError {
    /// No data row.
    #[error("the CSV has no data rows")]
    Empty,
    /// A field that should be a number is not one (or is not finite).
    #[error("line {line}: {field:?} is not a finite number")]
    NotANumber {
        /// 1-based line number.
        line: usize,
        /// The offending field (cut to 40 characters).
        field: String,
    },
    /// A row has a different number of columns than the first one.
    #[error("line {line}: expected {expected} columns, found {found}")]
    ColumnCount {
        /// 1-based line number.
        line: usize,
        /// Columns in the first data row.
        expected: usize,
        /// Columns in this row.
        found: usize,
    },
    /// One column and no sampling rate given.
    #[error("a single column of samples needs the sampling rate")]
    MissingSamplingRate,
    /// The given sampling rate is not a positive finite number.
    #[error("sampling rate {0} is not a positive number")]
    InvalidSamplingRate(f64),
    /// The time column does not increase at a regular step.
    #[error(
        "line {line}: the time column is not regular (expected {expected:.6} s, found {found:.6} s)"
    )]
    IrregularTime {
        /// 1-based line number of the first sample off the grid.
        line: usize,
        /// Time the regular grid expects.
        expected: f64,
        /// Time found.
        found: f64,
    },
    /// The rate given disagrees with the rate the time column implies.
    #[error("sampling rate {given} Hz disagrees with the time column's {derived:.3} Hz")]
    RateMismatch {
        /// The rate passed in.
        given: f64,
        /// The rate derived from the time column.
        derived: f64,
    },
}

/// Reads a lead from CSV text. With a time column the rate comes from it (and must agree with
/// `sampling_rate_hz` within 1 % if that is given too); with one column `sampling_rate_hz` is
/// required. The rate is not range-checked here: [`crate::analyze`] does that.
///
/// # Errors
/// See [`CsvError`].
pub fn read(text: &str, sampling_rate_hz: Option<f64>) -> Result<Recording, CsvError> {
    if let Some(rate) = sampling_rate_hz
        && !(rate.is_finite() && rate > 0.0)
    {
        return Err(CsvError::InvalidSamplingRate(rate));
    }
    let mut header: Option<Vec<String>> = None;
    let mut columns: Option<usize> = None;
    let mut times = Vec::new();
    let mut values = Vec::new();
    let mut lines = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.trim().trim_start_matches('\u{feff}');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields = split(line);
        let parsed: Vec<Option<f64>> = fields.iter().map(|f| parse_number(f)).collect();
        if columns.is_none() && header.is_none() && parsed.iter().any(Option::is_none) {
            header = Some(fields.iter().map(|f| unquote(f).to_owned()).collect());
            continue;
        }
        let expected = *columns.get_or_insert(fields.len());
        if fields.len() != expected {
            return Err(CsvError::ColumnCount {
                line: line_no,
                expected,
                found: fields.len(),
            });
        }
        for (field, value) in fields.iter().zip(&parsed) {
            if value.is_none() {
                return Err(CsvError::NotANumber {
                    line: line_no,
                    field: field.chars().take(40).collect(),
                });
            }
        }
        let numbers: Vec<f64> = parsed.into_iter().flatten().collect();
        if numbers.len() == 1 {
            values.push(numbers[0]);
        } else {
            times.push(numbers[0]);
            values.push(numbers[1]);
        }
        lines.push(line_no);
    }
    let Some(columns) = columns else {
        return Err(CsvError::Empty);
    };
    let lead_column = usize::from(columns > 1);
    let lead_name = header
        .as_ref()
        .and_then(|h| h.get(lead_column).cloned())
        .unwrap_or_default();
    let lead_count = columns.saturating_sub(1).max(1);
    let sampling_rate_hz = if columns == 1 {
        sampling_rate_hz.ok_or(CsvError::MissingSamplingRate)?
    } else {
        let derived = rate_from_times(&times, &lines)?;
        if let Some(given) = sampling_rate_hz
            && (given - derived).abs() > 0.01 * derived
        {
            return Err(CsvError::RateMismatch { given, derived });
        }
        sampling_rate_hz.unwrap_or(derived)
    };
    Ok(Recording {
        samples: values,
        sampling_rate_hz,
        lead_name,
        lead_count,
    })
}

/// The rate implied by a time column, which must stay within half a sample period of a regular
/// grid (so that times rounded to the millisecond still pass at 360 Hz).
fn rate_from_times(times: &[f64], lines: &[usize]) -> Result<f64, CsvError> {
    let (Some(&first), Some(&last)) = (times.first(), times.last()) else {
        return Err(CsvError::Empty);
    };
    if times.len() < 2 || last <= first {
        return Err(CsvError::IrregularTime {
            line: lines.get(1).copied().unwrap_or(1),
            expected: first,
            found: last,
        });
    }
    let step = (last - first) / (times.len() - 1) as f64;
    for (i, (&t, &line)) in times.iter().zip(lines).enumerate() {
        let expected = first + i as f64 * step;
        if (t - expected).abs() > 0.5 * step {
            return Err(CsvError::IrregularTime {
                line,
                expected,
                found: t,
            });
        }
    }
    Ok(1.0 / step)
}

fn split(line: &str) -> Vec<&str> {
    let separator = [',', ';', '\t'].into_iter().find(|c| line.contains(*c));
    match separator {
        Some(c) => line.split(c).map(str::trim).collect(),
        None => line.split_whitespace().collect(),
    }
}

fn unquote(field: &str) -> &str {
    field.trim().trim_matches('"').trim()
}

fn parse_number(field: &str) -> Option<f64> {
    unquote(field).parse::<f64>().ok().filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_column_needs_a_rate() {
        assert_eq!(read("0.1\n0.2\n", None), Err(CsvError::MissingSamplingRate));
        let r = read("mV\n0.1\n0.2\n", Some(250.0)).expect("valid");
        assert_eq!(r.samples, vec![0.1, 0.2]);
        assert_eq!(r.lead_name, "mV");
        assert_eq!(r.lead_count, 1);
    }

    #[test]
    fn time_and_value_columns_give_the_rate() {
        let text = "time,II\n0.000,1\n0.004,2\n0.008,3\n0.012,4\n";
        let r = read(text, None).expect("valid");
        assert!((r.sampling_rate_hz - 250.0).abs() < 1e-6);
        assert_eq!(r.samples, vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(r.lead_name, "II");
    }

    #[test]
    fn irregular_times_and_bad_fields_are_refused() {
        assert!(matches!(
            read("0,1\n0.004,2\n0.008,3\n0.1,4\n0.104,5\n", None),
            Err(CsvError::IrregularTime { .. })
        ));
        assert!(matches!(
            read("1\nx\n", Some(100.0)),
            Err(CsvError::NotANumber { line: 2, .. })
        ));
        assert!(matches!(
            read("1,2\n3\n", Some(100.0)),
            Err(CsvError::ColumnCount { line: 2, .. })
        ));
        assert_eq!(read("", Some(100.0)), Err(CsvError::Empty));
        assert_eq!(
            read("1\n", Some(-1.0)),
            Err(CsvError::InvalidSamplingRate(-1.0))
        );
    }
}
