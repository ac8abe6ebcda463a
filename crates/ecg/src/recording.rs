//! One lead of a record, as the readers return it.

/// One lead's samples in physical units with its sampling rate, as read from a WFDB or CSV
/// record, ready for [`crate::analyze`].
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    /// Samples in physical units (e.g. mV).
    pub samples: Vec<f64>,
    /// Sampling rate of `samples`, in Hz.
    pub sampling_rate_hz: f64,
    /// The lead's name (a WFDB signal description or a CSV column header; may be empty).
    pub lead_name: String,
    /// How many leads the source record holds.
    pub lead_count: usize,
}
