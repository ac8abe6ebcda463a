//! The laboratory as the API shows it: the catalogue, orders with their results and files,
//! and the bodies that create and change them. Instants are RFC 3339.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use carehub_domain::kernel::{PatientId, Text, ValidationErrors};
use carehub_domain::lab::{
    Analyte, AnalyteResult, LabCode, LabFile, LabFileKind, LabOrder, LabOrderDetail,
    LabOrderListing, LabOrderStatus, LabPriority, LabTest, LabTestKind, MAX_ANALYTES,
    MAX_FINDINGS_CHARS, MAX_NAME_LEN, MAX_QUESTION_CHARS, MAX_UNIT_LEN, MeasuredValue, NewLabOrder,
    RecordResults, ReferenceRange, ResultFlag,
};

use crate::openapi::{enums, rules};
use crate::routes::patients::views::{PatientSummaryView, PersonRef};

/// A reference range; every bound optional.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RangeView {
    pub low: Option<f64>,
    pub high: Option<f64>,
    /// Below this, a result is critical.
    pub critical_low: Option<f64>,
    /// Above this, a result is critical.
    pub critical_high: Option<f64>,
}

impl From<ReferenceRange> for RangeView {
    fn from(r: ReferenceRange) -> Self {
        Self {
            low: r.low,
            high: r.high,
            critical_low: r.critical_low,
            critical_high: r.critical_high,
        }
    }
}

/// One numeric analyte of a test.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalyteView {
    #[schema(schema_with = rules::lab_code, example = "hemoglobin")]
    pub code: String,
    /// 1 to 120 characters.
    #[schema(schema_with = rules::line_120, example = "Haemoglobin")]
    pub name: String,
    /// 1 to 20 characters.
    #[schema(schema_with = rules::optional_line_20, example = "g/dL")]
    pub unit: Option<String>,
    pub range: Option<RangeView>,
}

impl From<&Analyte> for AnalyteView {
    fn from(a: &Analyte) -> Self {
        Self {
            code: a.code.as_str().to_owned(),
            name: a.name.as_str().to_owned(),
            unit: a.unit.as_ref().map(|u| u.as_str().to_owned()),
            range: a.range.map(RangeView::from),
        }
    }
}

/// A test of the catalogue.
#[derive(Debug, Serialize, ToSchema)]
pub struct LabTestView {
    #[schema(example = "cbc")]
    pub code: String,
    #[schema(example = "Complete blood count")]
    pub name: String,
    #[schema(value_type = enums::LabTestKind)]
    pub kind: LabTestKind,
    pub analytes: Vec<AnalyteView>,
}

impl From<&LabTest> for LabTestView {
    fn from(t: &LabTest) -> Self {
        Self {
            code: t.code.as_str().to_owned(),
            name: t.name.as_str().to_owned(),
            kind: t.kind,
            analytes: t.analytes.iter().map(AnalyteView::from).collect(),
        }
    }
}

/// A new test for the catalogue.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LabTestInput {
    /// A lowercase letter, then lowercase letters, digits or `_`; at most 40.
    #[schema(schema_with = rules::lab_code, required = true, example = "tsh")]
    pub code: Option<String>,
    /// 1 to 120 characters.
    #[schema(schema_with = rules::line_120, required = true, example = "Thyroid-stimulating hormone")]
    pub name: Option<String>,
    #[schema(value_type = enums::LabTestKind, required = true)]
    pub kind: Option<String>,
    /// At most 50; codes unique within the test; each range's bounds in order (critical low ≤
    /// low < high ≤ critical high).
    #[serde(default)]
    #[schema(max_items = 50)]
    pub analytes: Vec<AnalyteView>,
}

fn code(errors: &mut ValidationErrors, field: &str, raw: &str) -> Option<LabCode> {
    errors.check(field, LabCode::parse(raw))
}

impl TryFrom<LabTestInput> for LabTest {
    type Error = ValidationErrors;

    fn try_from(input: LabTestInput) -> Result<Self, Self::Error> {
        let mut errors = ValidationErrors::new();
        let test_code = errors
            .require("code", input.code)
            .and_then(|raw| code(&mut errors, "code", &raw));
        let name = errors
            .require("name", input.name)
            .and_then(|raw| errors.check("name", Text::line(&raw, MAX_NAME_LEN)));
        let kind = errors.require("kind", input.kind).and_then(|raw| {
            errors.check(
                "kind",
                raw.parse::<LabTestKind>()
                    .map_err(|_| "must be one of panel, ecg, imaging, other"),
            )
        });
        if input.analytes.len() > MAX_ANALYTES {
            errors.add("analytes", format!("must list at most {MAX_ANALYTES}"));
        }
        let mut analytes = Vec::new();
        for (i, a) in input.analytes.iter().enumerate() {
            let field = |part: &str| format!("analytes[{i}].{part}");
            let c = code(&mut errors, &field("code"), &a.code);
            if c.as_ref()
                .is_some_and(|c| analytes.iter().any(|x: &Analyte| &x.code == c))
            {
                errors.add(field("code"), "is listed twice");
            }
            let n = errors.check(&field("name"), Text::line(&a.name, MAX_NAME_LEN));
            let unit = match &a.unit {
                Some(u) => errors
                    .check(&field("unit"), Text::line(u, MAX_UNIT_LEN))
                    .map(Some),
                None => Some(None),
            };
            let range = match a.range {
                Some(r) => errors
                    .check(
                        &field("range"),
                        ReferenceRange::parse(r.low, r.high, r.critical_low, r.critical_high),
                    )
                    .map(Some),
                None => Some(None),
            };
            if let (Some(code), Some(name), Some(unit), Some(range)) = (c, n, unit, range) {
                analytes.push(Analyte {
                    code,
                    name,
                    unit,
                    range,
                });
            }
        }
        match (test_code, name, kind) {
            (Some(code), Some(name), Some(kind)) if errors.is_empty() => Ok(LabTest {
                code,
                name,
                kind,
                analytes,
            }),
            _ => Err(errors),
        }
    }
}

/// A doctor's order.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LabOrderInput {
    /// A patient of the caller's care team.
    #[schema(value_type = Uuid, required = true)]
    pub patient_id: Option<Uuid>,
    /// Codes of the catalogue, 1 to 20, each once.
    #[schema(schema_with = rules::lab_codes, required = true, example = json!(["cbc", "ecg"]))]
    pub tests: Option<Vec<String>>,
    #[schema(value_type = enums::LabPriority, required = true)]
    pub priority: Option<String>,
    /// 1 to 2,000 characters: what the doctor wants to know.
    #[schema(schema_with = rules::text_2000, required = true, example = "Palpitations; rule out atrial fibrillation")]
    pub clinical_question: Option<String>,
}

impl TryFrom<LabOrderInput> for NewLabOrder {
    type Error = ValidationErrors;

    fn try_from(input: LabOrderInput) -> Result<Self, Self::Error> {
        let mut errors = ValidationErrors::new();
        errors.require("patient_id", input.patient_id.as_ref());
        let tests = errors.require("tests", input.tests).map(|raw| {
            raw.iter()
                .enumerate()
                .filter_map(|(i, c)| code(&mut errors, &format!("tests[{i}]"), c))
                .collect::<Vec<_>>()
        });
        let priority = errors.require("priority", input.priority).and_then(|raw| {
            errors.check(
                "priority",
                raw.parse::<LabPriority>()
                    .map_err(|_| "must be one of routine, urgent"),
            )
        });
        let question = errors
            .require("clinical_question", input.clinical_question)
            .and_then(|raw| {
                errors.check(
                    "clinical_question",
                    Text::multiline(&raw, MAX_QUESTION_CHARS),
                )
            });
        match (input.patient_id, tests, priority, question) {
            (Some(patient_id), Some(tests), Some(priority), Some(clinical_question))
                if errors.is_empty() =>
            {
                Ok(NewLabOrder {
                    patient_id: PatientId::from_uuid(patient_id),
                    tests,
                    priority,
                    clinical_question,
                })
            }
            _ => Err(errors),
        }
    }
}

/// The laboratory appointment.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleInput {
    /// RFC 3339.
    #[schema(value_type = String, format = DateTime, required = true)]
    pub scheduled_for: Option<String>,
}

impl ScheduleInput {
    /// # Errors
    /// The field's problem.
    pub fn instant(self) -> Result<Timestamp, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let at = errors
            .require("scheduled_for", self.scheduled_for)
            .and_then(|raw| {
                errors.check(
                    "scheduled_for",
                    raw.parse::<Timestamp>()
                        .map_err(|_| "must be an RFC 3339 date and time"),
                )
            });
        match at {
            Some(at) if errors.is_empty() => Ok(at),
            _ => Err(errors),
        }
    }
}

/// One measured value.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValueInput {
    /// A test of the order.
    #[schema(schema_with = rules::lab_code, example = "cbc")]
    pub test: String,
    /// An analyte of that test, given once.
    #[schema(schema_with = rules::lab_code, example = "hemoglobin")]
    pub analyte: String,
    #[schema(example = 13.2)]
    pub value: f64,
}

/// The results of an order.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResultsInput {
    /// Values of the ordered tests' analytes, each once; the flag is computed from the
    /// catalogue's range.
    #[serde(default)]
    #[schema(max_items = 200)]
    pub values: Vec<ValueInput>,
    /// Up to 10,000 characters.
    #[schema(schema_with = rules::optional_text_10000)]
    pub findings: Option<String>,
}

impl TryFrom<ResultsInput> for RecordResults {
    type Error = ValidationErrors;

    fn try_from(input: ResultsInput) -> Result<Self, Self::Error> {
        let mut errors = ValidationErrors::new();
        if input.values.len() > 200 {
            errors.add("values", "must list at most 200");
        }
        let values: Vec<MeasuredValue> = input
            .values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                let test = code(&mut errors, &format!("values[{i}].test"), &v.test);
                let analyte = code(&mut errors, &format!("values[{i}].analyte"), &v.analyte);
                Some(MeasuredValue {
                    test: test?,
                    analyte: analyte?,
                    value: v.value,
                })
            })
            .collect();
        let findings = match input.findings {
            Some(raw) => errors
                .check("findings", Text::multiline(&raw, MAX_FINDINGS_CHARS))
                .map(Some),
            None => Some(None),
        };
        match findings {
            Some(findings) if errors.is_empty() => Ok(RecordResults { values, findings }),
            _ => Err(errors),
        }
    }
}

/// One result, with what it was judged against.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResultView {
    pub test: String,
    pub analyte: String,
    pub name: String,
    pub value: f64,
    pub unit: Option<String>,
    pub range: Option<RangeView>,
    #[schema(value_type = enums::ResultFlag)]
    pub flag: ResultFlag,
}

impl From<AnalyteResult> for ResultView {
    fn from(r: AnalyteResult) -> Self {
        Self {
            test: r.test.as_str().to_owned(),
            analyte: r.analyte.as_str().to_owned(),
            name: r.name,
            value: r.value,
            unit: r.unit,
            range: r.range.map(RangeView::from),
            flag: r.flag,
        }
    }
}

/// A file attached to an order; its bytes at `/lab-orders/{id}/files/{file_id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct LabFileView {
    pub id: Uuid,
    #[schema(example = "100.hea")]
    pub name: String,
    #[schema(value_type = enums::LabFileKind)]
    pub kind: LabFileKind,
    pub content_type: String,
    pub size: u64,
    /// Lowercase hexadecimal SHA-256 of the bytes.
    pub sha256: String,
    pub sampling_rate_hz: Option<f64>,
    pub uploaded_by: Uuid,
    pub uploaded_at: Timestamp,
}

impl From<LabFile> for LabFileView {
    fn from(f: LabFile) -> Self {
        Self {
            id: *f.id.as_uuid(),
            name: f.name.as_str().to_owned(),
            kind: f.kind,
            content_type: f.content_type,
            size: f.size,
            sha256: f.sha256,
            sampling_rate_hz: f.sampling_rate_hz,
            uploaded_by: *f.uploaded_by.as_uuid(),
            uploaded_at: f.uploaded_at,
        }
    }
}

/// A lab order. The patient appears as their record number, name, date of birth and sex only.
#[derive(Debug, Serialize, ToSchema)]
pub struct LabOrderView {
    pub id: Uuid,
    pub patient: PatientSummaryView,
    pub ordered_by: PersonRef,
    pub tests: Vec<String>,
    #[schema(value_type = enums::LabPriority)]
    pub priority: LabPriority,
    pub clinical_question: String,
    #[schema(value_type = enums::LabOrderStatus)]
    pub status: LabOrderStatus,
    pub scheduled_for: Option<Timestamp>,
    pub collected_at: Option<Timestamp>,
    pub results: Vec<ResultView>,
    pub findings: Option<String>,
    pub resulted_at: Option<Timestamp>,
    /// `null` with a `released_at` when the release delay released them.
    pub released_by: Option<Uuid>,
    pub released_at: Option<Timestamp>,
    pub cancelled_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Present when one order is read.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub files: Option<Vec<LabFileView>>,
}

impl LabOrderView {
    pub fn listing(listing: LabOrderListing) -> Self {
        let LabOrderListing {
            order,
            patient,
            ordered_by_name,
        } = listing;
        let LabOrder {
            id,
            ordered_by,
            tests,
            priority,
            clinical_question,
            status,
            scheduled_for,
            collected_at,
            results,
            findings,
            resulted_at,
            released_by,
            released_at,
            cancelled_at,
            created_at,
            updated_at,
            ..
        } = order;
        Self {
            id: *id.as_uuid(),
            patient: PatientSummaryView::from(patient),
            ordered_by: PersonRef {
                id: *ordered_by.as_uuid(),
                full_name: ordered_by_name.map(|n| n.as_str().to_owned()),
            },
            tests: tests.iter().map(|t| t.as_str().to_owned()).collect(),
            priority,
            clinical_question: clinical_question.as_str().to_owned(),
            status,
            scheduled_for,
            collected_at,
            results: results.into_iter().map(ResultView::from).collect(),
            findings: findings.map(|f| f.as_str().to_owned()),
            resulted_at,
            released_by: released_by.map(|u| *u.as_uuid()),
            released_at,
            cancelled_at,
            created_at,
            updated_at,
            files: None,
        }
    }

    pub fn detail(detail: LabOrderDetail) -> Self {
        Self {
            files: Some(detail.files.into_iter().map(LabFileView::from).collect()),
            ..Self::listing(detail.listing)
        }
    }
}
