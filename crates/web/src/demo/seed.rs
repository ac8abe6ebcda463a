//! Seeds the demo clinic through the domain's services, each step taken by the user who would
//! take it in the API (the administrator makes the staff, the secretary registers patients and
//! books, doctors write records and refer), with bodies parsed by the API's own inputs: every
//! rule, audit event and notification is what the API would produce.

use std::collections::BTreeMap;

use anyhow::{Context as _, anyhow, bail};
use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use carehub_domain::access::{Action, Actor};
use carehub_domain::identity::{
    IdentityService, NewAccount, Principal, Role, SignInClient, UserId,
};
use carehub_domain::kernel::{PatientId, ValidationErrors, utc_date};
use carehub_domain::lab::{NewLabOrder, RecordResults, Upload};
use carehub_domain::patients::{NewNote, PatientDetails};
use carehub_domain::referrals::NewReferral;
use carehub_domain::scheduling::{
    Appointment, AppointmentError, AppointmentStatus, AvailabilityRule, BookingRequest,
    NewVisitNote, ProfileUpdate, StatusChange, parse_appointment_reason,
};

use super::DemoClinic;
use super::clinic::{self, DemoPatient, LabStage, Outcome, PASSWORD, USERS, Visit};
use crate::extract::from_json_value;
use crate::routes::lab::check;
use crate::routes::lab::views::{LabOrderInput, ResultsInput};
use crate::routes::patients::medical_input::{MedicalInput, NoteInput};
use crate::routes::patients::patient_input::PatientInput;
use crate::routes::prescriptions::inputs::PrescriptionInput;
use crate::routes::referrals::views::ReferralInput;
use crate::routes::scheduling::inputs::{AvailabilityInput, ProfileInput};
use crate::state::AppState;
use crate::upload::Part;

/// How far ahead the week's visits are booked.
const WEEK: SignedDuration = SignedDuration::from_hours(24 * 7);

/// The demo's accounts: every user's id, and the staff signed in.
#[derive(Debug, Default)]
struct People {
    ids: BTreeMap<&'static str, UserId>,
    actors: BTreeMap<&'static str, Actor>,
}

impl People {
    fn id(&self, username: &str) -> anyhow::Result<UserId> {
        self.ids
            .get(username)
            .copied()
            .ok_or_else(|| anyhow!("no demo user {username}"))
    }

    fn actor(&self, username: &str) -> anyhow::Result<&Actor> {
        self.actors
            .get(username)
            .ok_or_else(|| anyhow!("{username} is not signed in"))
    }
}

/// Seeds an empty database: accounts, doctors' profiles and hours, patients with their
/// records and care teams, notes, this week's visits and the referral.
///
/// # Errors
/// When any step is refused or fails.
pub(super) async fn seed(state: &AppState) -> anyhow::Result<DemoClinic> {
    let people = accounts(&state.identity).await?;
    for doctor in USERS.iter().filter(|u| u.role == "doctor") {
        doctor_schedule(state, &people, doctor.username).await?;
    }
    let patients = register_patients(state, &people).await?;
    write_notes(state, &people, &patients).await?;
    let visits = book_visits(state, &people, &patients).await?;
    send_referral(state, &people, &patients).await?;
    let lab_orders = lab_work(state, &people, &patients).await?;
    let prescriptions = prescribe(state, &people, &patients).await?;
    let tz = state.schedules.clinic_time_zone();
    let today = state.schedules.now().to_zoned(tz.clone()).date();
    Ok(DemoClinic {
        patients: patients.len(),
        appointments: visits.len(),
        today: visits
            .iter()
            .filter(|a| a.start.to_zoned(tz.clone()).date() == today)
            .count(),
        lab_orders,
        prescriptions,
    })
}

/// A body as the API would parse it, its errors listed.
fn input<T: DeserializeOwned>(what: &str, body: Value) -> anyhow::Result<T> {
    from_json_value(body).map_err(|errors| invalid(what, &errors))
}

fn invalid(what: &str, errors: &ValidationErrors) -> anyhow::Error {
    anyhow!("invalid demo {what}: {}", errors.listing())
}

/// The administrator (first in [`USERS`]) as `carehub admin create` makes one; the staff as
/// the administrator creates them; the patients as they register themselves. The staff sign
/// in, the administrator first.
async fn accounts(identity: &IdentityService) -> anyhow::Result<People> {
    let mut people = People::default();
    let mut admin: Option<Principal> = None;
    for user in USERS {
        let account = NewAccount::parse(user.username, PASSWORD, user.full_name, None, user.role)
            .map_err(|errors| invalid("account", &errors))?;
        let created = match (&admin, account.role) {
            (None, _) => identity.create_active_account(account).await?,
            (Some(_), Role::Patient) => identity.register(account, None).await?,
            (Some(admin), _) => identity.create_staff(admin, account).await?,
        };
        people.ids.insert(user.username, created.id);
        if created.role.is_staff() {
            let principal = sign_in(identity, user.username).await?;
            people.actors.insert(user.username, principal.actor(None));
            admin.get_or_insert(principal);
        }
    }
    Ok(people)
}

/// Signs in as `POST /auth/login` does, and authenticates the token as every request does.
async fn sign_in(identity: &IdentityService, username: &str) -> anyhow::Result<Principal> {
    let tokens = identity
        .login(username, PASSWORD, &SignInClient::default())
        .await
        .with_context(|| format!("{username} cannot sign in"))?;
    Ok(identity.authenticate(&tokens.tokens.access_token).await?)
}

/// The doctor writes their profile; the secretary sets their weekly hours.
async fn doctor_schedule(state: &AppState, people: &People, doctor: &str) -> anyhow::Result<()> {
    let id = people.id(doctor)?;
    let profile: ProfileInput = input("profile", clinic::profile(doctor))?;
    let profile = ProfileUpdate::try_from(profile).map_err(|e| invalid("profile", &e))?;
    state
        .schedules
        .update_doctor_profile(people.actor(doctor)?, id, profile)
        .await?;
    let hours: AvailabilityInput = input("hours", clinic::hours())?;
    let rules = Vec::<AvailabilityRule>::try_from(hours).map_err(|e| invalid("hours", &e))?;
    state
        .schedules
        .replace_availability(people.actor(clinic::SECRETARY)?, id, rules)
        .await?;
    Ok(())
}

/// The secretary registers each patient; the administrator puts their doctors on the care
/// team; the first of them writes the medical information.
async fn register_patients(
    state: &AppState,
    people: &People,
) -> anyhow::Result<BTreeMap<&'static str, PatientId>> {
    let today = utc_date(state.gatekeeper.now());
    let registration = state
        .gatekeeper
        .authorize_role(people.actor(clinic::SECRETARY)?, Action::CreatePatient)
        .await?;
    let mut ids = BTreeMap::new();
    for patient in clinic::patients() {
        let details = patient_details(&patient, people, today)?;
        let id = state
            .patients
            .create_patient(&registration, details)
            .await?
            .id;
        care_team(state, people, id, patient.care_team).await?;
        let writer = patient.care_team.first().context("a care team")?;
        let grant = state
            .gatekeeper
            .authorize(people.actor(writer)?, id, Action::UpdateMedical)
            .await?;
        let medical: MedicalInput = input("medical information", patient.medical)?;
        let medical = medical
            .parse(today)
            .map_err(|e| invalid("medical information", &e))?;
        state.medical.put_medical(&grant, medical).await?;
        ids.insert(patient.key, id);
    }
    Ok(ids)
}

fn patient_details(
    patient: &DemoPatient,
    people: &People,
    today: Date,
) -> anyhow::Result<PatientDetails> {
    let mut record = patient.record.clone();
    if let Some(account) = patient.account {
        record["user_id"] = json!(people.id(account)?);
    }
    let record: PatientInput = input("patient", record)?;
    record.parse(today).map_err(|e| invalid("patient", &e))
}

async fn care_team(
    state: &AppState,
    people: &People,
    patient: PatientId,
    doctors: &[&str],
) -> anyhow::Result<()> {
    let grant = state
        .gatekeeper
        .authorize(
            people.actor(clinic::ADMIN)?,
            patient,
            Action::AddCareTeamMember,
        )
        .await?;
    for doctor in doctors {
        state
            .care_teams
            .add_member(&grant, people.id(doctor)?)
            .await?;
    }
    Ok(())
}

fn patient(patients: &BTreeMap<&str, PatientId>, key: &str) -> anyhow::Result<PatientId> {
    patients
        .get(key)
        .copied()
        .ok_or_else(|| anyhow!("no demo patient {key}"))
}

/// Each note, then the note that amends it.
async fn write_notes(
    state: &AppState,
    people: &People,
    patients: &BTreeMap<&str, PatientId>,
) -> anyhow::Result<()> {
    for note in clinic::notes() {
        let id = patient(patients, note.patient)?;
        let grant = state
            .gatekeeper
            .authorize(people.actor(note.author)?, id, Action::WriteNote)
            .await?;
        let body: NoteInput = input("note", note.note)?;
        let new = NewNote::try_from(body).map_err(|e| invalid("note", &e))?;
        let written = state.medical.add_note(&grant, new).await?;
        if let Some(mut amendment) = note.amendment {
            amendment["amends"] = json!(written.id);
            let body: NoteInput = input("amendment", amendment)?;
            let new = NewNote::try_from(body).map_err(|e| invalid("amendment", &e))?;
            state.medical.add_note(&grant, new).await?;
        }
    }
    Ok(())
}

/// The secretary books each visit; then it is checked in, or seen and completed.
async fn book_visits(
    state: &AppState,
    people: &People,
    patients: &BTreeMap<&str, PatientId>,
) -> anyhow::Result<Vec<Appointment>> {
    let mut booked = Vec::with_capacity(clinic::VISITS.len());
    for visit in clinic::VISITS {
        let appointment = book_first_free(state, people, patients, &visit).await?;
        follow_up(state, people, &visit, &appointment).await?;
        booked.push(appointment);
    }
    Ok(booked)
}

/// Books `visit` at the doctor's first free time from its `day`-th day with free times on,
/// passing over the times the patient is taken (and any that has just gone by).
async fn book_first_free(
    state: &AppState,
    people: &People,
    patients: &BTreeMap<&str, PatientId>,
    visit: &Visit,
) -> anyhow::Result<Appointment> {
    let secretary = people.actor(clinic::SECRETARY)?;
    let (doctor_id, patient_id) = (people.id(visit.doctor)?, patient(patients, visit.patient)?);
    let reason = parse_appointment_reason(visit.reason)?;
    let tz = state.schedules.clinic_time_zone().clone();
    let now = state.schedules.now();
    let free = state
        .schedules
        .free_slots(secretary, doctor_id, now, now + WEEK)
        .await?;
    let day_of = |at: Timestamp| at.to_zoned(tz.clone()).date();
    let mut days: Vec<Date> = free.slots.iter().map(|s| day_of(s.start)).collect();
    days.dedup();
    let first_day = *days
        .get(visit.day)
        .context("the doctor has too few free days")?;
    for slot in free.slots.iter().filter(|s| day_of(s.start) >= first_day) {
        let request = BookingRequest {
            doctor_id,
            patient_id,
            start: slot.start,
            end: None,
            reason: reason.clone(),
            video: visit.video,
        };
        match state
            .appointments
            .book_appointment(secretary, request)
            .await
        {
            Err(AppointmentError::Conflicts(_) | AppointmentError::Unavailable(_)) => {}
            booked => return Ok(booked?),
        }
    }
    bail!("no free time this week for a visit to {}", visit.doctor)
}

async fn follow_up(
    state: &AppState,
    people: &People,
    visit: &Visit,
    appointment: &Appointment,
) -> anyhow::Result<()> {
    use AppointmentStatus as S;
    let secretary = people.actor(clinic::SECRETARY)?;
    let doctor = people.actor(visit.doctor)?;
    let steps = match visit.outcome {
        Outcome::Booked => return Ok(()),
        Outcome::CheckedIn => vec![(secretary, S::CheckedIn)],
        Outcome::Completed(_) => vec![
            (secretary, S::CheckedIn),
            (doctor, S::InProgress),
            (doctor, S::Completed),
        ],
    };
    for (actor, to) in steps {
        let change = StatusChange { to, reason: None };
        state
            .appointments
            .change_appointment_status(actor, appointment.id, change)
            .await?;
    }
    if let Outcome::Completed(body) = visit.outcome {
        let note: NoteInput = input("visit note", json!({ "body": body }))?;
        let note = NewVisitNote::try_from(note).map_err(|e| invalid("visit note", &e))?;
        state
            .visit_notes
            .write_visit_note(doctor, appointment.id, note)
            .await?;
    }
    Ok(())
}

/// dr.grey refers a patient of her care team to dr.house, who is notified.
async fn send_referral(
    state: &AppState,
    people: &People,
    patients: &BTreeMap<&str, PatientId>,
) -> anyhow::Result<()> {
    let mut body = clinic::referral();
    body["patient_id"] = json!(patient(patients, clinic::REFERRAL_PATIENT)?);
    body["to_doctor_id"] = json!(people.id(clinic::REFERRAL_TO)?);
    let referral: ReferralInput = input("referral", body)?;
    let referral = NewReferral::try_from(referral).map_err(|e| invalid("referral", &e))?;
    state
        .referrals
        .send_referral(people.actor(clinic::REFERRAL_FROM)?, referral)
        .await?;
    Ok(())
}

/// Each demo prescription, written by its doctor. Returns how many there are.
async fn prescribe(
    state: &AppState,
    people: &People,
    patients: &BTreeMap<&str, PatientId>,
) -> anyhow::Result<usize> {
    let all = clinic::prescriptions();
    for demo in &all {
        let doctor = people.actor(demo.doctor)?;
        let body: PrescriptionInput = input("prescription", demo.prescription.clone())?;
        let new = body
            .validate(patient(patients, demo.patient)?)
            .map_err(|e| invalid("prescription", &e))?;
        state.prescriptions.prescribe(doctor, new).await?;
    }
    Ok(all.len())
}

/// The laboratory's work: each demo order placed by its doctor and taken by lab.lee as far as
/// its stage, the ECG recording uploaded as the laboratory would (its analysis is the job
/// workers', once the server runs). Returns how many orders there are.
async fn lab_work(
    state: &AppState,
    people: &People,
    patients: &BTreeMap<&str, PatientId>,
) -> anyhow::Result<usize> {
    let lab = people.actor(clinic::LABORATORY)?;
    let tz = state.schedules.clinic_time_zone();
    let tomorrow = state
        .schedules
        .now()
        .to_zoned(tz.clone())
        .date()
        .tomorrow()?;
    let appointment = tomorrow.at(8, 30, 0, 0).to_zoned(tz.clone())?.timestamp();
    let orders = clinic::lab_orders();
    for demo in &orders {
        let doctor = people.actor(demo.doctor)?;
        let mut body = demo.order.clone();
        body["patient_id"] = json!(patient(patients, demo.patient)?);
        let order: LabOrderInput = input("lab order", body)?;
        let order = NewLabOrder::try_from(order).map_err(|e| invalid("lab order", &e))?;
        let id = state.lab.order(doctor, order).await?.listing.order.id;
        match demo.stage {
            LabStage::Ordered => {}
            LabStage::Scheduled => {
                state.lab.schedule(lab, id, appointment).await?;
            }
            LabStage::Resulted | LabStage::Released => {
                state.lab.collect(lab, id).await?;
                let results: ResultsInput = input("lab results", demo.results.clone())?;
                let results =
                    RecordResults::try_from(results).map_err(|e| invalid("lab results", &e))?;
                state.lab.record_results(lab, id, results).await?;
                if demo.stage == LabStage::Released {
                    state.lab.release(doctor, id).await?;
                }
            }
            LabStage::EcgRecorded => {
                state.lab.collect(lab, id).await?;
                state.lab.upload(lab, id, vec![ecg_recording()?]).await?;
            }
        }
    }
    Ok(orders.len())
}

/// A minute of one lead at 250 Hz in atrial fibrillation, seeded, as a `time,value` CSV
/// checked as an upload is.
fn ecg_recording() -> anyhow::Result<Upload> {
    use carehub_ecg::synth::{self, SynthConfig, SynthRhythm};
    let record = synth::generate(&SynthConfig {
        seed: 2026,
        sampling_rate_hz: 250.0,
        duration_secs: 60.0,
        heart_rate_bpm: 105.0,
        rhythm: SynthRhythm::AtrialFibrillation {
            irregularity: 0.2,
            f_wave_mv: 0.08,
        },
        noise_mv: 0.02,
        baseline_wander_mv: 0.1,
        ..SynthConfig::default()
    })
    .map_err(|e| anyhow!("the demo ECG: {e}"))?;
    let text = synth::to_csv(&record.leads, record.sampling_rate_hz, true);
    let part = Part {
        name: "ecg-lead-ii.csv".to_owned(),
        declared: Some("text/csv".to_owned()),
        bytes: text.into_bytes(),
    };
    check(part, None).map_err(|e| anyhow!("the demo ECG: {e}"))
}
