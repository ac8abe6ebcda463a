//! The laboratory's JSON columns in infra's own shape, so that a change to the domain's serde
//! cannot silently change what stored rows mean. The ECG analysis is `carehub-ecg`'s own
//! serialized form, which that crate keeps stable with its algorithm version.

use serde::{Deserialize, Serialize};

use carehub_domain::kernel::{RepositoryError, Text};
use carehub_domain::lab::{Analyte, AnalyteResult, EcgTrace, LabCode, ReferenceRange, ResultFlag};

use crate::db::backend::corrupt;

pub(super) fn code(raw: &str) -> Result<LabCode, RepositoryError> {
    LabCode::parse(raw).map_err(|e| corrupt("lab", e))
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct StoredRange {
    low: Option<f64>,
    high: Option<f64>,
    critical_low: Option<f64>,
    critical_high: Option<f64>,
}

impl StoredRange {
    fn of(range: &ReferenceRange) -> Self {
        Self {
            low: range.low,
            high: range.high,
            critical_low: range.critical_low,
            critical_high: range.critical_high,
        }
    }

    fn into_range(self) -> Result<ReferenceRange, RepositoryError> {
        ReferenceRange::parse(self.low, self.high, self.critical_low, self.critical_high)
            .map_err(|e| corrupt("lab", e))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredAnalyte {
    code: String,
    name: String,
    unit: Option<String>,
    range: Option<StoredRange>,
}

impl StoredAnalyte {
    pub(super) fn of(analyte: &Analyte) -> Self {
        Self {
            code: analyte.code.as_str().to_owned(),
            name: analyte.name.as_str().to_owned(),
            unit: analyte.unit.as_ref().map(|u| u.as_str().to_owned()),
            range: analyte.range.as_ref().map(StoredRange::of),
        }
    }

    pub(super) fn into_analyte(self) -> Result<Analyte, RepositoryError> {
        let line = |raw: &str| Text::line(raw, usize::MAX).map_err(|e| corrupt("lab_tests", e));
        Ok(Analyte {
            code: code(&self.code)?,
            name: line(&self.name)?,
            unit: self.unit.as_deref().map(line).transpose()?,
            range: self.range.map(StoredRange::into_range).transpose()?,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredResult {
    test: String,
    analyte: String,
    name: String,
    value: f64,
    unit: Option<String>,
    range: Option<StoredRange>,
    flag: String,
}

impl StoredResult {
    pub(super) fn of(result: &AnalyteResult) -> Self {
        Self {
            test: result.test.as_str().to_owned(),
            analyte: result.analyte.as_str().to_owned(),
            name: result.name.clone(),
            value: result.value,
            unit: result.unit.clone(),
            range: result.range.as_ref().map(StoredRange::of),
            flag: result.flag.as_str().to_owned(),
        }
    }

    pub(super) fn into_result(self) -> Result<AnalyteResult, RepositoryError> {
        Ok(AnalyteResult {
            test: code(&self.test)?,
            analyte: code(&self.analyte)?,
            name: self.name,
            value: self.value,
            unit: self.unit,
            range: self.range.map(StoredRange::into_range).transpose()?,
            flag: self
                .flag
                .parse::<ResultFlag>()
                .map_err(|e| corrupt("lab_orders", e))?,
        })
    }
}

/// `carehub-ecg`'s analysis, as it serializes itself.
pub(crate) type StoredAnalysis = carehub_ecg::Analysis;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredTrace {
    sampling_rate_hz: f64,
    samples: Vec<f32>,
}

impl StoredTrace {
    pub(super) fn of(trace: &EcgTrace) -> Self {
        Self {
            sampling_rate_hz: trace.sampling_rate_hz,
            samples: trace.samples.clone(),
        }
    }

    pub(super) fn into_trace(self) -> EcgTrace {
        EcgTrace {
            sampling_rate_hz: self.sampling_rate_hz,
            samples: self.samples,
        }
    }
}
