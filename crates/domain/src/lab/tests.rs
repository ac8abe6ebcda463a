//! The laboratory's rules through its service, over doubles of every port: who may order,
//! read, work, release and cancel; what the laboratory and patients are shown; how results are
//! flagged and whom they tell.

use std::sync::{Arc, Mutex};

use mockall::predicate::eq;

use super::*;
use crate::access::Basis;
use crate::audit::AuditAction;
use crate::identity::Role;
use crate::jobs::Task;
use crate::kernel::{PatientId, Text};
use crate::notifications::{NotificationKind, Recipient};
use crate::patients::{MockPatientRepository, PatientSummary, Sex};
use crate::test_support::{
    Mocks, NOW, ON_CARE_TEAM, OWN_RECORD, UNRELATED, actor, assert_allowed, assert_denied,
    invalid_fields, single_event, stored_patient,
};

fn code(raw: &str) -> LabCode {
    LabCode::parse(raw).expect("a code")
}

fn catalogue() -> Vec<LabTest> {
    let line = |raw: &str| Text::line(raw, 100).expect("text");
    vec![
        LabTest {
            code: code("cbc"),
            name: line("Complete blood count"),
            kind: LabTestKind::Panel,
            analytes: vec![
                Analyte {
                    code: code("hemoglobin"),
                    name: line("Haemoglobin"),
                    unit: Some(line("g/dL")),
                    range: Some(
                        ReferenceRange::parse(Some(12.0), Some(17.5), Some(7.0), Some(20.0))
                            .expect("range"),
                    ),
                },
                Analyte {
                    code: code("wbc"),
                    name: line("White blood cells"),
                    unit: Some(line("10^9/L")),
                    range: Some(
                        ReferenceRange::parse(Some(4.0), Some(11.0), None, None).expect("range"),
                    ),
                },
            ],
        },
        LabTest {
            code: code("ecg"),
            name: line("Electrocardiogram"),
            kind: LabTestKind::Ecg,
            analytes: Vec::new(),
        },
        LabTest {
            code: code("hba1c"),
            name: line("HbA1c"),
            kind: LabTestKind::Panel,
            analytes: Vec::new(),
        },
    ]
}

fn order(patient_id: PatientId, by: UserId, status: LabOrderStatus) -> LabOrder {
    let new = NewLabOrder {
        patient_id,
        tests: vec![code("cbc"), code("ecg")],
        priority: LabPriority::Urgent,
        clinical_question: Text::line("Palpitations", 100).expect("text"),
    };
    LabOrder {
        status,
        ..LabOrder::place(new, by, NOW)
    }
}

fn detail(order: LabOrder) -> LabOrderDetail {
    let patient = stored_patient(None);
    LabOrderDetail {
        listing: LabOrderListing {
            patient: PatientSummary {
                id: order.patient_id,
                ..PatientSummary::from(&patient)
            },
            order,
            ordered_by_name: None,
        },
        files: Vec::new(),
        ecg: None,
    }
}

/// What the lab repository's `change_order` was given.
#[derive(Debug, Clone)]
struct Change {
    order: LabOrder,
    from: LabOrderStatus,
    notifications: Vec<crate::notifications::NewNotification>,
    jobs: JobChanges,
    audited: bool,
}

struct Lab {
    mocks: Mocks,
    lab: MockLabRepository,
    files: MockFileStore,
    patients: MockPatientRepository,
}

impl Lab {
    fn new() -> Self {
        Self {
            mocks: Mocks::new(),
            lab: MockLabRepository::new(),
            files: MockFileStore::new(),
            patients: MockPatientRepository::new(),
        }
    }

    fn finds(&mut self, detail: LabOrderDetail) {
        let id = detail.listing.order.id;
        self.lab
            .expect_find_order()
            .with(eq(id))
            .returning(move |_| Ok(Some(detail.clone())));
    }

    fn knows_the_catalogue(&mut self) {
        self.lab.expect_catalogue().returning(|| Ok(catalogue()));
    }

    fn captures_changes(&mut self) -> Arc<Mutex<Vec<Change>>> {
        let changes = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&changes);
        self.lab.expect_change_order().times(1).returning(move |c| {
            log.lock().expect("log").push(Change {
                order: c.order.clone(),
                from: c.from,
                notifications: c.notifications.to_vec(),
                jobs: c.jobs.clone(),
                audited: c.audit.is_some(),
            });
            Ok(Vec::new())
        });
        changes
    }

    fn service(self) -> LabService {
        LabService::new(
            self.mocks.gatekeeper(),
            Arc::new(self.lab),
            Arc::new(self.files),
            Arc::new(self.patients),
            Arc::new(crate::notifications::MockNotificationPublisher::new()),
        )
    }
}

fn new_order(patient_id: PatientId, tests: &[&str]) -> NewLabOrder {
    NewLabOrder {
        patient_id,
        tests: tests.iter().map(|t| code(t)).collect(),
        priority: LabPriority::Routine,
        clinical_question: Text::line("Anaemia?", 100).expect("text"),
    }
}

#[tokio::test]
async fn a_care_team_doctor_orders_tests_of_the_catalogue_and_it_is_audited() {
    let doctor = actor(Role::Doctor);
    let patient_id = PatientId::generate();
    let mut lab = Lab::new();
    lab.mocks.facts(patient_id, &doctor, Some(ON_CARE_TEAM));
    lab.knows_the_catalogue();
    let created = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&created);
    lab.lab
        .expect_create_order()
        .times(1)
        .returning(move |o, e| {
            log.lock().expect("log").push((o.clone(), e.clone()));
            Ok(())
        });
    let stored = Arc::clone(&created);
    lab.lab.expect_find_order().times(1).returning(move |_| {
        Ok(stored
            .lock()
            .expect("log")
            .first()
            .map(|(o, _): &(LabOrder, _)| detail(o.clone())))
    });
    // The creation's own event covers the read-back: nothing else is audited.
    lab.mocks.nothing_audited();
    let read = lab
        .service()
        .order(&doctor, new_order(patient_id, &["cbc", "ecg"]))
        .await
        .expect("ordered");
    let order = read.listing.order;
    assert_eq!(order.status, LabOrderStatus::Ordered);
    assert_eq!(order.ordered_by, doctor.user_id());
    let created = created.lock().expect("log");
    assert_eq!(created[0].0, order);
    assert_allowed(
        &created[0].1,
        &doctor,
        Some(patient_id),
        AuditAction::LabOrderCreate,
        Basis::CareTeam,
    );
}

#[tokio::test]
async fn unknown_and_repeated_tests_are_refused_and_nothing_is_stored() {
    let doctor = actor(Role::Doctor);
    let patient_id = PatientId::generate();
    let mut lab = Lab::new();
    lab.mocks.facts(patient_id, &doctor, Some(ON_CARE_TEAM));
    lab.knows_the_catalogue();
    lab.lab.expect_create_order().never();
    let result = lab
        .service()
        .order(&doctor, new_order(patient_id, &["cbc", "tsh", "cbc"]))
        .await;
    assert_eq!(invalid_fields(result), ["tests", "tests"]);
}

#[tokio::test]
async fn a_doctor_outside_the_care_team_is_told_the_patient_does_not_exist() {
    let doctor = actor(Role::Doctor);
    let patient_id = PatientId::generate();
    let mut lab = Lab::new();
    lab.mocks.facts(patient_id, &doctor, Some(UNRELATED));
    let audited = lab.mocks.audit_succeeds();
    lab.lab.expect_create_order().never();
    let result = lab
        .service()
        .order(&doctor, new_order(patient_id, &["cbc"]))
        .await;
    assert!(matches!(result, Err(LabError::NotFound)), "{result:?}");
    assert_denied(
        &single_event(&audited),
        &doctor,
        Some(patient_id),
        AuditAction::LabOrderCreate,
    );
}

#[tokio::test]
async fn the_laboratory_reads_any_order_on_its_role_without_looking_at_the_record() {
    let technician = actor(Role::Laboratory);
    let order = order(
        PatientId::generate(),
        UserId::generate(),
        LabOrderStatus::Ordered,
    );
    let patient_id = order.patient_id;
    let id = order.id;
    let mut lab = Lab::new();
    lab.mocks.no_patient_lookup();
    lab.finds(detail(order));
    let audited = lab.mocks.audit_succeeds();
    let read = lab.service().get(&technician, id).await.expect("read");
    assert_eq!(read.listing.order.id, id);
    assert_allowed(
        &single_event(&audited),
        &technician,
        Some(patient_id),
        AuditAction::LabOrderRead,
        Basis::Role,
    );
}

#[tokio::test]
async fn a_patient_does_not_see_their_order_before_it_is_released() {
    let patient = actor(Role::Patient);
    let order = order(
        PatientId::generate(),
        UserId::generate(),
        LabOrderStatus::Resulted,
    );
    let (patient_id, id) = (order.patient_id, order.id);
    let mut lab = Lab::new();
    lab.finds(detail(order));
    lab.mocks.facts(patient_id, &patient, Some(OWN_RECORD));
    let audited = lab.mocks.audit_succeeds();
    let result = lab.service().get(&patient, id).await;
    assert!(matches!(result, Err(LabError::OrderNotFound)), "{result:?}");
    assert_denied(
        &single_event(&audited),
        &patient,
        Some(patient_id),
        AuditAction::LabOrderRead,
    );
}

#[tokio::test]
async fn a_patient_reads_their_released_order() {
    let patient = actor(Role::Patient);
    let order = order(
        PatientId::generate(),
        UserId::generate(),
        LabOrderStatus::Released,
    );
    let (patient_id, id) = (order.patient_id, order.id);
    let mut lab = Lab::new();
    lab.finds(detail(order));
    lab.mocks.facts(patient_id, &patient, Some(OWN_RECORD));
    let audited = lab.mocks.audit_succeeds();
    lab.service().get(&patient, id).await.expect("released");
    assert_allowed(
        &single_event(&audited),
        &patient,
        Some(patient_id),
        AuditAction::LabOrderRead,
        Basis::OwnRecord,
    );
}

#[tokio::test]
async fn the_laboratory_queue_holds_the_open_orders_unless_asked_otherwise() {
    let technician = actor(Role::Laboratory);
    let mut lab = Lab::new();
    lab.lab
        .expect_list_orders()
        .withf(|q, _| {
            q.statuses == LabOrderStatus::OPEN.to_vec()
                && q.patient_id.is_none()
                && q.ordered_by.is_none()
        })
        .times(1)
        .returning(|_, _| {
            Ok(crate::kernel::Page::from_overfetch(
                Vec::new(),
                50,
                |l: &LabOrderListing| l.order.id,
            ))
        });
    lab.mocks.nothing_audited();
    lab.service()
        .list(
            &technician,
            None,
            Vec::new(),
            crate::kernel::PageRequest::first(50),
        )
        .await
        .expect("the queue");
}

#[tokio::test]
async fn a_patient_lists_only_the_released_orders_of_their_own_record() {
    let patient = actor(Role::Patient);
    let record = stored_patient(Some(patient.user_id()));
    let record_id = record.id;
    let mut lab = Lab::new();
    lab.patients
        .expect_find_by_user()
        .with(eq(patient.user_id()))
        .returning(move |_| Ok(Some(record.clone())));
    lab.lab
        .expect_list_orders()
        .withf(move |q, _| {
            q.statuses == [LabOrderStatus::Released] && q.patient_id == Some(record_id)
        })
        .times(1)
        .returning(|_, _| {
            Ok(crate::kernel::Page::from_overfetch(
                Vec::new(),
                50,
                |l: &LabOrderListing| l.order.id,
            ))
        });
    lab.mocks.nothing_audited();
    lab.service()
        .list(
            &patient,
            None,
            vec![LabOrderStatus::Resulted],
            crate::kernel::PageRequest::first(50),
        )
        .await
        .expect("their results");
}

#[tokio::test]
async fn secretaries_and_administrators_list_no_lab_orders() {
    for role in [Role::Secretary, Role::Admin] {
        let caller = actor(role);
        let mut lab = Lab::new();
        lab.lab.expect_list_orders().never();
        let audited = lab.mocks.audit_succeeds();
        let result = lab
            .service()
            .list(
                &caller,
                None,
                Vec::new(),
                crate::kernel::PageRequest::first(50),
            )
            .await;
        assert!(
            matches!(result, Err(LabError::Forbidden)),
            "{role}: {result:?}"
        );
        assert_denied(
            &single_event(&audited),
            &caller,
            None,
            AuditAction::LabOrderList,
        );
    }
}

#[tokio::test]
async fn results_are_flagged_and_a_critical_value_tells_the_orderer_urgently() {
    let technician = actor(Role::Laboratory);
    let orderer = UserId::generate();
    let order = order(PatientId::generate(), orderer, LabOrderStatus::Collected);
    let id = order.id;
    let mut lab = Lab::new();
    lab.finds(detail(order));
    lab.knows_the_catalogue();
    let changes = lab.captures_changes();
    let input = RecordResults {
        values: vec![
            MeasuredValue {
                test: code("cbc"),
                analyte: code("hemoglobin"),
                value: 6.1,
            },
            MeasuredValue {
                test: code("cbc"),
                analyte: code("wbc"),
                value: 12.0,
            },
        ],
        findings: None,
    };
    lab.service()
        .record_results(&technician, id, input)
        .await
        .expect("recorded");
    let change = changes.lock().expect("log")[0].clone();
    assert_eq!(change.from, LabOrderStatus::Collected);
    assert_eq!(change.order.status, LabOrderStatus::Resulted);
    let flags: Vec<ResultFlag> = change.order.results.iter().map(|r| r.flag).collect();
    assert_eq!(flags, [ResultFlag::Critical, ResultFlag::High]);
    assert!(change.audited);
    let told: Vec<(Recipient, NotificationKind, bool)> = change
        .notifications
        .iter()
        .map(|n| (n.recipient, n.kind, n.data.urgent))
        .collect();
    assert_eq!(
        told,
        [
            (
                Recipient::User(orderer),
                NotificationKind::LabResulted,
                true
            ),
            (
                Recipient::User(orderer),
                NotificationKind::LabCritical,
                true
            ),
        ]
    );
    let timings = LabTimings::default();
    let jobs: Vec<(Task, jiff::Timestamp)> = change
        .jobs
        .add
        .iter()
        .map(|j| (j.task.clone(), j.run_at))
        .collect();
    assert_eq!(
        jobs,
        [
            (
                Task::LabAutoRelease { order: id },
                NOW + timings.release_after
            ),
            (
                Task::LabCriticalEscalation { order: id },
                NOW + timings.escalate_critical_after
            ),
        ]
    );
}

#[tokio::test]
async fn values_of_analytes_the_order_does_not_ask_for_are_refused() {
    let technician = actor(Role::Laboratory);
    let order = order(
        PatientId::generate(),
        UserId::generate(),
        LabOrderStatus::Collected,
    );
    let id = order.id;
    let mut lab = Lab::new();
    lab.finds(detail(order));
    lab.knows_the_catalogue();
    lab.lab.expect_change_order().never();
    let input = RecordResults {
        values: vec![
            MeasuredValue {
                test: code("hba1c"),
                analyte: code("hba1c"),
                value: 6.0,
            },
            MeasuredValue {
                test: code("cbc"),
                analyte: code("platelets"),
                value: 200.0,
            },
            MeasuredValue {
                test: code("cbc"),
                analyte: code("wbc"),
                value: f64::NAN,
            },
        ],
        findings: None,
    };
    let result = lab.service().record_results(&technician, id, input).await;
    assert_eq!(
        invalid_fields(result),
        ["values[0].test", "values[1].analyte", "values[2].value"]
    );
}

#[tokio::test]
async fn only_the_ordering_doctor_cancels_and_a_refusal_is_audited() {
    let colleague = actor(Role::Doctor);
    let order = order(
        PatientId::generate(),
        UserId::generate(),
        LabOrderStatus::Ordered,
    );
    let (patient_id, id) = (order.patient_id, order.id);
    let mut lab = Lab::new();
    lab.finds(detail(order));
    lab.mocks.facts(patient_id, &colleague, Some(ON_CARE_TEAM));
    let audited = lab.mocks.audit_succeeds();
    lab.lab.expect_change_order().never();
    let result = lab.service().cancel(&colleague, id).await;
    assert!(
        matches!(
            result,
            Err(LabError::Transition(LabTransitionError::NotOrderer))
        ),
        "{result:?}"
    );
    assert_denied(
        &single_event(&audited),
        &colleague,
        Some(patient_id),
        AuditAction::LabOrderCancel,
    );
}

#[tokio::test]
async fn a_release_tells_the_patients_account_and_cancels_the_automatic_one() {
    let doctor = actor(Role::Doctor);
    let account = UserId::generate();
    let record = stored_patient(Some(account));
    let order = order(record.id, UserId::generate(), LabOrderStatus::Resulted);
    let (patient_id, id) = (order.patient_id, order.id);
    let mut lab = Lab::new();
    lab.finds(detail(order));
    lab.mocks.facts(patient_id, &doctor, Some(ON_CARE_TEAM));
    lab.patients
        .expect_find()
        .with(eq(patient_id))
        .returning(move |_| Ok(Some(record.clone())));
    let changes = lab.captures_changes();
    lab.service().release(&doctor, id).await.expect("released");
    let change = changes.lock().expect("log")[0].clone();
    assert_eq!(change.order.status, LabOrderStatus::Released);
    assert_eq!(change.order.released_by, Some(doctor.user_id()));
    assert_eq!(change.jobs.cancel, [format!("lab.auto_release:{id}")]);
    let told: Vec<(Recipient, NotificationKind)> = change
        .notifications
        .iter()
        .map(|n| (n.recipient, n.kind))
        .collect();
    assert_eq!(
        told,
        [(Recipient::User(account), NotificationKind::LabReleased)]
    );
}

#[test]
fn the_laboratory_sees_of_the_patient_only_what_tells_patients_apart() {
    // The listing's patient is a summary: record number, name, date of birth and sex.
    let summary = detail(order(
        PatientId::generate(),
        UserId::generate(),
        LabOrderStatus::Ordered,
    ))
    .listing
    .patient;
    let PatientSummary {
        id: _,
        mrn: _,
        full_name: _,
        date_of_birth: _,
        sex,
    } = summary;
    assert!(Sex::ALL.contains(&sex));
}

#[tokio::test]
async fn a_doctor_lists_their_own_orders_only_of_patients_still_theirs_to_read() {
    let doctor = actor(Role::Doctor);
    let still = order(
        PatientId::generate(),
        doctor.user_id(),
        LabOrderStatus::Resulted,
    );
    let left = order(
        PatientId::generate(),
        doctor.user_id(),
        LabOrderStatus::Resulted,
    );
    let (kept, dropped) = (still.clone(), left.clone());
    let mut lab = Lab::new();
    let me = doctor.user_id();
    lab.lab
        .expect_list_orders()
        .withf(move |q, _| q.ordered_by == Some(me) && q.patient_id.is_none())
        .times(1)
        .returning(move |_, _| {
            Ok(crate::kernel::Page::from_overfetch(
                vec![
                    detail(dropped.clone()).listing,
                    detail(kept.clone()).listing,
                ],
                50,
                |l: &LabOrderListing| l.order.id,
            ))
        });
    lab.mocks
        .facts(still.patient_id, &doctor, Some(ON_CARE_TEAM));
    lab.mocks.facts(left.patient_id, &doctor, Some(UNRELATED));
    let audited = lab.mocks.audit_succeeds();
    let page = lab
        .service()
        .list(
            &doctor,
            None,
            Vec::new(),
            crate::kernel::PageRequest::first(50),
        )
        .await
        .expect("their orders");
    let ids: Vec<_> = page.items.iter().map(|l| l.order.id).collect();
    assert_eq!(ids, [still.id]);
    assert_allowed(
        &single_event(&audited),
        &doctor,
        Some(still.patient_id),
        AuditAction::LabOrderList,
        Basis::CareTeam,
    );
}
