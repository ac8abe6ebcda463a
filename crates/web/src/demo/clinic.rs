//! Who and what the demo clinic holds: its people, its doctors' profiles and hours, its
//! patients' records, notes, visits, referral and lab orders. Bodies are written as a client would send
//! them to the API, and parsed by the API's own inputs.

use serde_json::{Value, json};

/// Every demo user's password: 12 characters or more, and no username inside it.
pub const PASSWORD: &str = "welcome-to-carehub";

/// A demo account, as printed at start.
#[derive(Debug, Clone, Copy)]
pub struct DemoUser {
    pub username: &'static str,
    pub role: &'static str,
    pub full_name: &'static str,
}

const fn user(username: &'static str, role: &'static str, full_name: &'static str) -> DemoUser {
    DemoUser {
        username,
        role,
        full_name,
    }
}

/// One user of each role, and two patients with their own accounts; the administrator first.
pub const USERS: [DemoUser; 8] = [
    user("admin", "admin", "Avery Admin"),
    user("sam.secretary", "secretary", "Sam Reyes"),
    user("dr.grey", "doctor", "Meredith Grey"),
    user("dr.house", "doctor", "Gregory House"),
    user("dr.wilson", "doctor", "James Wilson"),
    user("lab.lee", "laboratory", "Lee Chen"),
    user("ann.patient", "patient", "Ann Parker"),
    user("bob.patient", "patient", "Bob Baker"),
];

pub(super) const ADMIN: &str = "admin";
pub(super) const SECRETARY: &str = "sam.secretary";
pub(super) const LABORATORY: &str = "lab.lee";

/// A doctor's profile, as `PUT /doctors/{id}/profile` takes it.
pub(super) fn profile(doctor: &str) -> Value {
    let (specializations, bio) = match doctor {
        "dr.grey" => (
            json!(["Cardiology", "Cardiothoracic surgery"]),
            "Heart failure, hypertension and chest pain that will not settle.",
        ),
        "dr.house" => (
            json!(["Internal medicine", "Diagnostics", "Infectious diseases"]),
            "The cases nobody else could name.",
        ),
        _ => (
            json!(["Oncology", "Haematology"]),
            "Lymphoma and leukaemia care, from diagnosis to follow-up.",
        ),
    };
    json!({ "specializations": specializations, "bio": bio, "appointment_minutes": 30 })
}

/// Weekly hours, as `PUT /doctors/{id}/availability` takes them: weekdays 09:00 to 17:00 and
/// a weekend clinic from 10:00 to 14:00, so that a demo started on a weekend has visits too.
pub(super) fn hours() -> Value {
    let weekdays = ["monday", "tuesday", "wednesday", "thursday", "friday"]
        .map(|day| json!({ "weekday": day, "start": "09:00", "end": "17:00" }));
    let weekend = ["saturday", "sunday"]
        .map(|day| json!({ "weekday": day, "start": "10:00", "end": "14:00" }));
    json!({ "rules": weekdays.iter().chain(&weekend).collect::<Vec<_>>() })
}

/// A demo patient: their record as `POST /patients` takes it, the account linked to it, the
/// doctors of their care team (the first one writes their medical information) and that
/// information as `PUT /patients/{id}/medical` takes it.
#[derive(Debug)]
pub(super) struct DemoPatient {
    pub key: &'static str,
    pub account: Option<&'static str>,
    pub care_team: &'static [&'static str],
    pub record: Value,
    pub medical: Value,
}

pub(super) fn patients() -> Vec<DemoPatient> {
    vec![
        DemoPatient {
            key: "ann",
            account: Some("ann.patient"),
            care_team: &["dr.grey"],
            record: json!({
                "full_name": "Ann Parker", "date_of_birth": "1968-04-12", "sex": "female",
                "contact": { "phone": "+1 555 0101", "email": "ann.parker@example.org",
                    "address": { "lines": ["12 Elm Street"], "city": "Seattle",
                        "postal_code": "98101", "country": "US" } },
                "identifiers": [{ "system": "national_id", "value": "DEMO-100-001" }],
                "insurance": { "provider": "Evergreen Health", "policy_number": "EH-448812",
                    "group": "G-12", "valid_until": "2030-12-31" },
                "emergency_contact": { "name": "Tom Parker", "relationship": "husband",
                    "phone": "+1 555 0102" },
            }),
            medical: json!({
                "blood_type": "A+",
                "allergies": [{ "substance": "penicillin", "reaction": "hives",
                    "severity": "moderate" }],
                "conditions": [{ "name": "essential hypertension", "code": "I10",
                    "since": "2015-03-01" }],
                "medications": [{ "name": "lisinopril", "dose": "10 mg",
                    "frequency": "once daily" }],
            }),
        },
        DemoPatient {
            key: "bob",
            account: Some("bob.patient"),
            care_team: &["dr.house"],
            record: json!({
                "full_name": "Bob Baker", "date_of_birth": "1979-09-30", "sex": "male",
                "contact": { "phone": "+1 555 0201", "email": "bob.baker@example.org" },
                "insurance": { "provider": "Cascade Mutual", "policy_number": "CM-20931" },
            }),
            medical: json!({
                "blood_type": "O-",
                "conditions": [{ "name": "chronic fatigue, cause unknown", "since": "2025-06-01" }],
                "medications": [{ "name": "vitamin D3", "dose": "1000 IU",
                    "frequency": "once daily" }],
            }),
        },
        DemoPatient {
            key: "carla",
            account: None,
            care_team: &["dr.grey"],
            record: json!({
                "full_name": "Carla Mendes", "date_of_birth": "1985-01-22", "sex": "female",
                "contact": { "phone": "+1 555 0301" },
                "insurance": { "provider": "Evergreen Health", "policy_number": "EH-551020" },
            }),
            medical: json!({
                "blood_type": "B+",
                "allergies": [{ "substance": "iodinated contrast", "reaction": "rash",
                    "severity": "mild" }],
                "conditions": [{ "name": "atypical chest pain", "code": "R07.89" }],
            }),
        },
        DemoPatient {
            key: "david",
            account: None,
            care_team: &["dr.wilson"],
            record: json!({
                "full_name": "David Okafor", "date_of_birth": "1957-11-03", "sex": "male",
                "contact": { "phone": "+1 555 0401", "address": { "lines": ["4 Harbor Road",
                    "Apt 7"], "city": "Tacoma", "postal_code": "98402", "country": "US" } },
                "emergency_contact": { "name": "Grace Okafor", "relationship": "daughter",
                    "phone": "+1 555 0402" },
            }),
            medical: json!({
                "blood_type": "AB+",
                "conditions": [{ "name": "follicular lymphoma", "code": "C82.90",
                    "since": "2024-02-14" }],
                "medications": [
                    { "name": "rituximab", "dose": "375 mg/m2", "frequency": "every 8 weeks" },
                    { "name": "ondansetron", "dose": "8 mg", "frequency": "as needed" },
                ],
            }),
        },
        DemoPatient {
            key: "eve",
            account: None,
            care_team: &["dr.house", "dr.wilson"],
            record: json!({
                "full_name": "Eve Lindqvist", "date_of_birth": "1992-06-17", "sex": "female",
                "contact": { "email": "eve.lindqvist@example.org" },
                "location": { "room": "204", "bed": "B" },
            }),
            medical: json!({
                "allergies": [{ "substance": "peanuts", "reaction": "anaphylaxis",
                    "severity": "life_threatening" }],
                "conditions": [{ "name": "recurrent fever of unknown origin", "code": "R50.9" }],
            }),
        },
        DemoPatient {
            key: "frank",
            account: None,
            care_team: &["dr.grey", "dr.wilson"],
            record: json!({
                "full_name": "Frank Moreau", "date_of_birth": "1949-02-08", "sex": "male",
                "contact": { "phone": "+1 555 0601" },
                "insurance": { "provider": "Medicare", "policy_number": "1EG4-TE5-MK72" },
            }),
            medical: json!({
                "blood_type": "A-",
                "conditions": [
                    { "name": "atrial fibrillation", "code": "I48.91", "since": "2019-10-01" },
                    { "name": "basal cell carcinoma, excised", "code": "C44.91" },
                ],
                "medications": [{ "name": "apixaban", "dose": "5 mg", "frequency": "twice daily" }],
            }),
        },
    ]
}

/// A clinical note, and the note that corrects it, if any.
#[derive(Debug)]
pub(super) struct DemoNote {
    pub author: &'static str,
    pub patient: &'static str,
    pub note: Value,
    pub amendment: Option<Value>,
}

pub(super) fn notes() -> Vec<DemoNote> {
    vec![
        DemoNote {
            author: "dr.grey",
            patient: "ann",
            note: json!({ "kind": "progress", "body":
                "Blood pressure 152/94 despite lisinopril 10 mg. Increase to 20 mg once daily; \
                 home readings for two weeks." }),
            amendment: Some(json!({ "kind": "progress", "body":
                "Correction: keep lisinopril at 10 mg and add amlodipine 5 mg once daily \
                 (ACE inhibitor cough reported by phone)." })),
        },
        DemoNote {
            author: "dr.house",
            patient: "eve",
            note: json!({ "kind": "consultation", "body":
                "Fevers every 9 to 11 days for four months. Not an infection I know of. \
                 Ordered: full blood count, ferritin, blood cultures x3, chest CT." }),
            amendment: None,
        },
    ]
}

/// What happens to a visit once booked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    Booked,
    /// The secretary checks the patient in.
    CheckedIn,
    /// Checked in, seen and completed, with this visit note.
    Completed(&'static str),
}

/// A visit to book: at the first free time of the doctor, from the `day`-th day with free
/// times on (0: today when the doctor still has time today).
#[derive(Debug, Clone, Copy)]
pub(super) struct Visit {
    pub doctor: &'static str,
    pub patient: &'static str,
    pub day: usize,
    pub reason: &'static str,
    pub outcome: Outcome,
    /// A video consultation.
    pub video: bool,
}

const fn visit(doctor: &'static str, patient: &'static str, day: usize) -> Visit {
    Visit {
        doctor,
        patient,
        day,
        reason: "",
        outcome: Outcome::Booked,
        video: false,
    }
}

pub(super) const VISITS: [Visit; 9] = [
    Visit {
        reason: "Blood pressure review",
        outcome: Outcome::CheckedIn,
        ..visit("dr.grey", "ann", 0)
    },
    Visit {
        reason: "Fatigue: results of the blood tests",
        outcome: Outcome::Completed(
            "Ferritin 9 ug/L: iron deficiency explains the fatigue. Start ferrous sulfate \
             325 mg daily; look for the source of the loss (colonoscopy referral).",
        ),
        ..visit("dr.house", "bob", 0)
    },
    Visit {
        reason: "Follow-up after rituximab cycle 4",
        ..visit("dr.wilson", "david", 0)
    },
    Visit {
        reason: "Palpitations at night",
        video: true,
        ..visit("dr.grey", "frank", 0)
    },
    Visit {
        reason: "Fevers: CT and blood culture results",
        ..visit("dr.house", "eve", 1)
    },
    Visit {
        reason: "Chest pain follow-up",
        video: true,
        ..visit("dr.grey", "carla", 1)
    },
    Visit {
        reason: "Skin check after excision",
        ..visit("dr.wilson", "frank", 2)
    },
    Visit {
        reason: "Second opinion: dizzy spells",
        ..visit("dr.house", "ann", 3)
    },
    Visit {
        reason: "Haematology review of the fevers",
        ..visit("dr.wilson", "eve", 4)
    },
];

/// The referral waiting in dr.house's inbox, as `POST /referrals` takes it (less the ids).
pub(super) const REFERRAL_FROM: &str = "dr.grey";
pub(super) const REFERRAL_TO: &str = "dr.house";
pub(super) const REFERRAL_PATIENT: &str = "carla";

pub(super) fn referral() -> Value {
    json!({
        "reason": "Chest pain with a normal cardiac work-up: please look for another cause.",
        "clinical_summary": "Three months of intermittent left-sided chest \
            pain. ECG, troponin, echocardiogram and stress test normal. Mild reaction to \
            iodinated contrast. No cardiac cause found; pain persists and wakes her at night.",
        "urgency": "urgent",
    })
}

/// Where a demo lab order is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LabStage {
    /// Waiting in the laboratory's queue.
    Ordered,
    /// Booked for the next morning.
    Scheduled,
    /// Resulted: the ordering doctor has the results (with `values` and `findings`).
    Resulted,
    /// Resulted and released to the patient by the ordering doctor.
    Released,
    /// Collected, with a synthetic ECG recording uploaded (analysed by the job workers once
    /// the server runs).
    EcgRecorded,
}

/// A lab order, as `POST /lab-orders` takes it (less the patient's id), and how far it goes.
#[derive(Debug, Clone)]
pub(super) struct DemoLabOrder {
    pub doctor: &'static str,
    pub patient: &'static str,
    pub order: Value,
    pub stage: LabStage,
    /// As `POST /lab-orders/{id}/results` takes them.
    pub results: Value,
}

/// The laboratory's work: one order in each state the pages show, among them a critical
/// value for dr.house and a suspected atrial fibrillation for dr.grey.
pub(super) fn lab_orders() -> Vec<DemoLabOrder> {
    vec![
        DemoLabOrder {
            doctor: "dr.grey",
            patient: "ann",
            order: json!({ "tests": ["lipid_panel", "hba1c"], "priority": "routine",
                "clinical_question": "Cardiovascular risk review on lisinopril." }),
            stage: LabStage::Released,
            results: json!({
                "values": [
                    { "test": "lipid_panel", "analyte": "total_cholesterol", "value": 5.6 },
                    { "test": "lipid_panel", "analyte": "ldl", "value": 3.4 },
                    { "test": "lipid_panel", "analyte": "hdl", "value": 1.3 },
                    { "test": "lipid_panel", "analyte": "triglycerides", "value": 1.5 },
                    { "test": "hba1c", "analyte": "hba1c", "value": 5.4 },
                ],
                "findings": "Fasting sample. LDL above target.",
            }),
        },
        DemoLabOrder {
            doctor: "dr.grey",
            patient: "frank",
            order: json!({ "tests": ["ecg"], "priority": "urgent",
                "clinical_question": "Palpitations at night; rule out atrial fibrillation." }),
            stage: LabStage::EcgRecorded,
            results: Value::Null,
        },
        DemoLabOrder {
            doctor: "dr.house",
            patient: "bob",
            order: json!({ "tests": ["cbc"], "priority": "urgent",
                "clinical_question": "Fatigue: anaemia?" }),
            stage: LabStage::Resulted,
            results: json!({
                "values": [
                    { "test": "cbc", "analyte": "hemoglobin", "value": 6.4 },
                    { "test": "cbc", "analyte": "wbc", "value": 6.8 },
                    { "test": "cbc", "analyte": "platelets", "value": 210.0 },
                ],
                "findings": "Microcytic, hypochromic red cells on the film.",
            }),
        },
        DemoLabOrder {
            doctor: "dr.house",
            patient: "eve",
            order: json!({ "tests": ["cbc"], "priority": "urgent",
                "clinical_question": "Recurrent fevers: white cell count and differential." }),
            stage: LabStage::Ordered,
            results: Value::Null,
        },
        DemoLabOrder {
            doctor: "dr.grey",
            patient: "carla",
            order: json!({ "tests": ["troponin", "ecg"], "priority": "routine",
                "clinical_question": "Chest pain follow-up: repeat troponin and ECG." }),
            stage: LabStage::Scheduled,
            results: Value::Null,
        },
    ]
}

/// A prescription, as `POST /patients/{id}/prescriptions` takes it.
#[derive(Debug, Clone)]
pub(super) struct DemoPrescription {
    pub doctor: &'static str,
    pub patient: &'static str,
    pub prescription: Value,
}

/// Ann's blood pressure and cholesterol medicines, and Bob's iron for the anaemia his blood
/// count shows.
pub(super) fn prescriptions() -> Vec<DemoPrescription> {
    vec![
        DemoPrescription {
            doctor: "dr.grey",
            patient: "ann",
            prescription: json!({ "medication": "Lisinopril", "dose": "10 mg", "route": "oral",
                "frequency": "once daily", "quantity": 30, "refills": 5,
                "instructions": "In the morning. Check your blood pressure weekly." }),
        },
        DemoPrescription {
            doctor: "dr.grey",
            patient: "ann",
            prescription: json!({ "medication": "Atorvastatin", "dose": "20 mg",
                "route": "oral", "frequency": "once daily at night", "duration_days": 90,
                "quantity": 90, "refills": 0,
                "instructions": "Lipids to be rechecked at the end of the course." }),
        },
        DemoPrescription {
            doctor: "dr.house",
            patient: "bob",
            prescription: json!({ "medication": "Ferrous sulfate", "dose": "200 mg",
                "route": "oral", "frequency": "twice daily", "duration_days": 90,
                "quantity": 180, "refills": 0,
                "instructions": "On an empty stomach, with orange juice; stools may turn dark." }),
        },
    ]
}
