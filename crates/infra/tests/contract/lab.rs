//! `LabRepository`: the catalogue with its default tests, orders written with their audit
//! events, changes conditional on the status and written with their notifications and jobs,
//! listings filtered and paged, files, and ECG analyses, on both backends.

use jiff::{SignedDuration, Timestamp};

use carehub_domain::audit::AuditAction;
use carehub_domain::identity::UserId;
use carehub_domain::jobs::{JobChanges, JobFilter, JobKind, JobState, NewJob, Task};
use carehub_domain::kernel::{LabFileId, LabOrderId, PageRequest, PatientId, Text};
use carehub_domain::lab::{
    AddTestError, Analyte, AnalyteResult, EcgOutcome, EcgRecord, EcgTrace, FileName,
    LabChangeError, LabCode, LabFile, LabFileKind, LabOrder, LabOrderChange, LabOrderQuery,
    LabOrderStatus, LabPriority, LabTest, LabTestKind, NewLabOrder, ReferenceRange, ResultFlag,
};
use carehub_domain::notifications::{
    NewNotification, NotificationData, NotificationKind, Recipient,
};
use carehub_infra::Repositories;

use crate::fixtures::patients::{audit, register_named};
use crate::fixtures::referrals::notifications_of;
use crate::fixtures::{audited, doctor, micros, now};

contract!(
    a_fresh_database_has_the_default_catalogue,
    an_added_test_is_listed_and_its_code_cannot_be_taken_again,
    an_order_is_stored_with_its_audit_event_and_read_with_the_patients_summary,
    a_change_from_a_status_the_order_has_left_writes_nothing,
    results_are_written_with_their_notifications_and_jobs,
    a_release_cancels_the_pending_automatic_release,
    orders_are_listed_by_patient_orderer_and_status_newest_first_in_pages,
    files_are_added_while_the_order_accepts_them,
    an_ecg_analysis_replaces_the_earlier_one,
);

fn code(raw: &str) -> LabCode {
    LabCode::parse(raw).unwrap()
}

fn new_order(patient_id: PatientId, by: UserId, tests: &[&str]) -> LabOrder {
    let new = NewLabOrder {
        patient_id,
        tests: tests.iter().map(|t| code(t)).collect(),
        priority: LabPriority::Urgent,
        clinical_question: Text::multiline("Palpitations;\nrule out AF", 2000).unwrap(),
    };
    LabOrder::place(new, by, micros(now()))
}

/// A doctor, a patient and an order of theirs, stored.
async fn ordered(repos: &Repositories, tests: &[&str]) -> (UserId, LabOrder) {
    let doctor = doctor(repos, "dr.lab").await;
    let patient = register_named(repos, "Ann Parker", doctor.id).await;
    let order = new_order(patient.id, doctor.id, tests);
    repos
        .lab
        .create_order(
            &order,
            &audit(doctor.id, patient.id, AuditAction::LabOrderCreate),
        )
        .await
        .unwrap();
    (doctor.id, order)
}

/// Applies `step` to the stored order and writes it with `notifications` and `jobs`.
async fn change(
    repos: &Repositories,
    order: &mut LabOrder,
    notifications: &[NewNotification],
    jobs: &JobChanges,
    step: impl FnOnce(&mut LabOrder, Timestamp),
) -> Result<(), LabChangeError> {
    let from = order.status;
    step(order, micros(now()));
    let event = audit(
        order.ordered_by,
        order.patient_id,
        AuditAction::LabOrderUpdate,
    );
    repos
        .lab
        .change_order(LabOrderChange {
            order,
            from,
            audit: Some(&event),
            notifications,
            jobs,
        })
        .await
        .map(|_| ())
}

async fn a_fresh_database_has_the_default_catalogue(repos: Repositories) {
    let catalogue = repos.lab.catalogue().await.unwrap();
    let codes: Vec<&str> = catalogue.iter().map(|t| t.code.as_str()).collect();
    for expected in ["cbc", "ecg", "hba1c", "lipid_panel"] {
        assert!(codes.contains(&expected), "{codes:?}");
    }
    let mut sorted = codes.clone();
    sorted.sort_unstable();
    assert_eq!(codes, sorted, "by code");
    let cbc = catalogue.iter().find(|t| t.code.as_str() == "cbc").unwrap();
    assert_eq!(cbc.kind, LabTestKind::Panel);
    let hemoglobin = cbc.analyte(&code("hemoglobin")).unwrap();
    assert_eq!(hemoglobin.unit.as_ref().map(Text::as_str), Some("g/dL"));
    assert_eq!(hemoglobin.range.unwrap().flag(6.5), ResultFlag::Critical);
    let ecg = catalogue.iter().find(|t| t.code.as_str() == "ecg").unwrap();
    assert_eq!((ecg.kind, ecg.analytes.len()), (LabTestKind::Ecg, 0));
}

async fn an_added_test_is_listed_and_its_code_cannot_be_taken_again(repos: Repositories) {
    let test = LabTest {
        code: code("tsh"),
        name: Text::line("Thyroid-stimulating hormone", 120).unwrap(),
        kind: LabTestKind::Panel,
        analytes: vec![Analyte {
            code: code("tsh"),
            name: Text::line("TSH", 120).unwrap(),
            unit: Some(Text::line("mIU/L", 20).unwrap()),
            range: Some(ReferenceRange::parse(Some(0.4), Some(4.0), None, Some(50.0)).unwrap()),
        }],
    };
    repos.lab.add_test(&test).await.unwrap();
    let listed = repos.lab.catalogue().await.unwrap();
    assert_eq!(listed.iter().find(|t| t.code == test.code), Some(&test));
    assert!(matches!(
        repos.lab.add_test(&test).await,
        Err(AddTestError::Duplicate)
    ));
}

async fn an_order_is_stored_with_its_audit_event_and_read_with_the_patients_summary(
    repos: Repositories,
) {
    let (_, order) = ordered(&repos, &["cbc", "ecg"]).await;
    let detail = repos.lab.find_order(order.id).await.unwrap().unwrap();
    assert_eq!(detail.listing.order, order);
    assert_eq!(detail.listing.patient.id, order.patient_id);
    assert_eq!(detail.listing.patient.full_name.as_str(), "Ann Parker");
    assert!(detail.listing.ordered_by_name.is_some());
    assert!(detail.files.is_empty() && detail.ecg.is_none());
    assert!(
        audited(&repos, order.patient_id)
            .await
            .contains(&AuditAction::LabOrderCreate)
    );
    assert!(
        repos
            .lab
            .find_order(LabOrderId::generate())
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_change_from_a_status_the_order_has_left_writes_nothing(repos: Repositories) {
    let (_, mut order) = ordered(&repos, &["cbc"]).await;
    let stale = order.clone();
    change(&repos, &mut order, &[], &JobChanges::default(), |o, at| {
        o.collect(at).unwrap();
    })
    .await
    .unwrap();
    let mut second = stale;
    let moved = change(&repos, &mut second, &[], &JobChanges::default(), |o, at| {
        o.cancel(o.ordered_by, at).unwrap();
    })
    .await;
    assert!(matches!(moved, Err(LabChangeError::Moved)), "{moved:?}");
    let stored = repos.lab.find_order(order.id).await.unwrap().unwrap();
    assert_eq!(stored.listing.order.status, LabOrderStatus::Collected);
    assert_eq!(stored.listing.order, order);
}

fn critical_results() -> Vec<AnalyteResult> {
    let range = ReferenceRange::parse(Some(12.0), Some(17.5), Some(7.0), Some(20.0)).unwrap();
    vec![AnalyteResult {
        test: code("cbc"),
        analyte: code("hemoglobin"),
        name: "Haemoglobin".into(),
        value: 6.1,
        unit: Some("g/dL".into()),
        range: Some(range),
        flag: range.flag(6.1),
    }]
}

fn notice(order: &LabOrder, kind: NotificationKind) -> NewNotification {
    NewNotification {
        recipient: Recipient::User(order.ordered_by),
        kind,
        data: NotificationData {
            title: "Critical lab result".into(),
            lab_order_id: Some(*order.id.as_uuid()),
            urgent: true,
            ..NotificationData::default()
        },
    }
}

async fn pending_jobs(repos: &Repositories, kind: JobKind) -> Vec<Task> {
    repos
        .jobs
        .list(
            JobFilter {
                state: Some(JobState::Scheduled),
                kind: Some(kind),
            },
            PageRequest::first(50),
        )
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|j| j.task)
        .collect()
}

async fn resulted(repos: &Repositories, order: &mut LabOrder) {
    let release = NewJob::new(
        Task::LabAutoRelease { order: order.id },
        micros(now()) + SignedDuration::from_hours(72),
    )
    .unique(format!("lab.auto_release:{}", order.id));
    let by = order.ordered_by;
    change(repos, order, &[], &JobChanges::default(), |o, at| {
        o.collect(at).unwrap();
    })
    .await
    .unwrap();
    let notices = [notice(order, NotificationKind::LabCritical)];
    change(
        repos,
        order,
        &notices,
        &JobChanges::add(vec![release]),
        |o, at| {
            o.record_results(
                critical_results(),
                Some(Text::multiline("Haemolysed? Repeat.", 100).unwrap()),
                by,
                at,
            )
            .unwrap();
        },
    )
    .await
    .unwrap();
}

async fn results_are_written_with_their_notifications_and_jobs(repos: Repositories) {
    let (doctor, mut order) = ordered(&repos, &["cbc"]).await;
    resulted(&repos, &mut order).await;
    let stored = repos.lab.find_order(order.id).await.unwrap().unwrap();
    assert_eq!(stored.listing.order, order);
    assert_eq!(stored.listing.order.results[0].flag, ResultFlag::Critical);
    let told = notifications_of(&repos, doctor).await;
    assert_eq!(told.len(), 1);
    assert_eq!(told[0].kind, NotificationKind::LabCritical);
    assert_eq!(told[0].data.lab_order_id, Some(*order.id.as_uuid()));
    assert!(told[0].data.urgent);
    assert_eq!(
        pending_jobs(&repos, JobKind::LabAutoRelease).await,
        [Task::LabAutoRelease { order: order.id }]
    );
}

async fn a_release_cancels_the_pending_automatic_release(repos: Repositories) {
    let (doctor, mut order) = ordered(&repos, &["cbc"]).await;
    resulted(&repos, &mut order).await;
    let cancel = JobChanges {
        cancel: vec![format!("lab.auto_release:{}", order.id)],
        add: Vec::new(),
    };
    change(&repos, &mut order, &[], &cancel, |o, at| {
        o.release(Some(doctor), at).unwrap();
    })
    .await
    .unwrap();
    assert!(
        pending_jobs(&repos, JobKind::LabAutoRelease)
            .await
            .is_empty()
    );
    let stored = repos.lab.find_order(order.id).await.unwrap().unwrap();
    assert_eq!(stored.listing.order.status, LabOrderStatus::Released);
    assert_eq!(stored.listing.order.released_by, Some(doctor));
    // The automatic release, which names nobody and audits nothing, finds it released.
    let mut again = order.clone();
    let from = LabOrderStatus::Resulted;
    again.released_by = None;
    let moved = repos
        .lab
        .change_order(LabOrderChange {
            order: &again,
            from,
            audit: None,
            notifications: &[],
            jobs: &JobChanges::default(),
        })
        .await;
    assert!(matches!(moved, Err(LabChangeError::Moved)), "{moved:?}");
}

async fn orders_are_listed_by_patient_orderer_and_status_newest_first_in_pages(
    repos: Repositories,
) {
    let (first_doctor, first) = ordered(&repos, &["cbc"]).await;
    let other_doctor = doctor(&repos, "dr.other").await;
    let other_patient = register_named(&repos, "Ben Other", other_doctor.id).await;
    let mut orders = vec![first.clone()];
    for _ in 0..3 {
        let order = new_order(other_patient.id, other_doctor.id, &["hba1c"]);
        repos
            .lab
            .create_order(
                &order,
                &audit(
                    other_doctor.id,
                    other_patient.id,
                    AuditAction::LabOrderCreate,
                ),
            )
            .await
            .unwrap();
        orders.push(order);
    }
    let mut collected = orders[1].clone();
    change(
        &repos,
        &mut collected,
        &[],
        &JobChanges::default(),
        |o, at| {
            o.collect(at).unwrap();
        },
    )
    .await
    .unwrap();
    let ids = |query: LabOrderQuery, limit: u32| {
        let repos = repos.clone();
        async move {
            repos
                .lab
                .list_orders(&query, PageRequest::first(limit))
                .await
                .unwrap()
        }
    };
    let all = ids(LabOrderQuery::default(), 10).await;
    let newest_first: Vec<LabOrderId> = orders.iter().rev().map(|o| o.id).collect();
    assert_eq!(
        all.items.iter().map(|l| l.order.id).collect::<Vec<_>>(),
        newest_first
    );
    let by_patient = ids(
        LabOrderQuery {
            patient_id: Some(first.patient_id),
            ..LabOrderQuery::default()
        },
        10,
    )
    .await;
    assert_eq!(by_patient.items.len(), 1);
    assert_eq!(by_patient.items[0].order.ordered_by, first_doctor);
    let by_orderer = ids(
        LabOrderQuery {
            ordered_by: Some(other_doctor.id),
            ..LabOrderQuery::default()
        },
        10,
    )
    .await;
    assert_eq!(by_orderer.items.len(), 3);
    let open = ids(
        LabOrderQuery {
            statuses: vec![LabOrderStatus::Ordered, LabOrderStatus::Scheduled],
            ..LabOrderQuery::default()
        },
        10,
    )
    .await;
    assert_eq!(open.items.len(), 3);
    assert!(open.items.iter().all(|l| l.order.id != collected.id));
    let page = ids(LabOrderQuery::default(), 2).await;
    assert_eq!(page.items.len(), 2);
    let next = page.next.unwrap();
    let rest = repos
        .lab
        .list_orders(
            &LabOrderQuery::default(),
            PageRequest::new(Some(2), Some(next)).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        rest.items.iter().map(|l| l.order.id).collect::<Vec<_>>(),
        newest_first[2..]
    );
}

fn file(order: LabOrderId, by: UserId, name: &str, kind: LabFileKind) -> LabFile {
    LabFile {
        id: LabFileId::generate(),
        order_id: order,
        name: FileName::parse(name).unwrap(),
        kind,
        content_type: kind.content_type().to_owned(),
        size: 1234,
        sha256: "a".repeat(64),
        sampling_rate_hz: None,
        pair: None,
        uploaded_by: by,
        uploaded_at: micros(now()),
    }
}

async fn files_are_added_while_the_order_accepts_them(repos: Repositories) {
    let (doctor, mut order) = ordered(&repos, &["ecg"]).await;
    let mut header = file(order.id, doctor, "100.hea", LabFileKind::EcgHeader);
    let mut signal = file(order.id, doctor, "100.dat", LabFileKind::EcgSignal);
    header.pair = Some(signal.id);
    signal.pair = Some(header.id);
    let mut csv = file(order.id, doctor, "strip.csv", LabFileKind::EcgCsv);
    csv.sampling_rate_hz = Some(250.0);
    let event = audit(doctor, order.patient_id, AuditAction::LabFileUpload);
    let job = NewJob::new(
        Task::EcgAnalysis {
            order: order.id,
            file: header.id,
        },
        micros(now()),
    );
    // Still `ordered`: the write is conditional on `collected`, and nothing is written.
    let early = repos
        .lab
        .add_files(
            order.id,
            LabOrderStatus::Collected,
            &[header.clone()],
            &event,
            &[],
        )
        .await;
    assert!(matches!(early, Err(LabChangeError::Moved)), "{early:?}");
    change(&repos, &mut order, &[], &JobChanges::default(), |o, at| {
        o.collect(at).unwrap();
    })
    .await
    .unwrap();
    let files = [header.clone(), signal.clone(), csv.clone()];
    repos
        .lab
        .add_files(
            order.id,
            LabOrderStatus::Collected,
            &files,
            &event,
            std::slice::from_ref(&job),
        )
        .await
        .unwrap();
    let stored = repos.lab.find_order(order.id).await.unwrap().unwrap();
    assert_eq!(stored.files, files);
    assert_eq!(
        repos.lab.find_file(order.id, csv.id).await.unwrap(),
        Some(csv.clone())
    );
    assert_eq!(
        repos
            .lab
            .find_file(LabOrderId::generate(), csv.id)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        pending_jobs(&repos, JobKind::EcgAnalysis).await,
        std::slice::from_ref(&job.task)
    );
    assert!(
        audited(&repos, order.patient_id)
            .await
            .contains(&AuditAction::LabFileUpload)
    );
}

/// An analysis of ten seconds of one sharp beat a second.
fn analysis() -> (carehub_ecg::Analysis, EcgTrace) {
    let rate = 250.0;
    let samples: Vec<f64> = (0..2500)
        .map(|i| {
            let phase = (i % 250) as f64 - 125.0;
            (-(phase / 4.0).powi(2)).exp()
        })
        .collect();
    let analysis = carehub_ecg::analyze(&samples, rate).unwrap();
    let trace = EcgTrace {
        sampling_rate_hz: rate,
        samples: samples.iter().take(500).map(|s| *s as f32).collect(),
    };
    (analysis, trace)
}

async fn an_ecg_analysis_replaces_the_earlier_one(repos: Repositories) {
    let (doctor, mut order) = ordered(&repos, &["ecg"]).await;
    change(&repos, &mut order, &[], &JobChanges::default(), |o, at| {
        o.collect(at).unwrap();
    })
    .await
    .unwrap();
    let first = file(order.id, doctor, "a.csv", LabFileKind::EcgCsv);
    let second = file(order.id, doctor, "b.csv", LabFileKind::EcgCsv);
    repos
        .lab
        .add_files(
            order.id,
            LabOrderStatus::Collected,
            &[first.clone(), second.clone()],
            &audit(doctor, order.patient_id, AuditAction::LabFileUpload),
            &[],
        )
        .await
        .unwrap();
    let (analysis, trace) = analysis();
    let analysed = EcgRecord {
        order_id: order.id,
        file_id: first.id,
        analyzed_at: micros(now()),
        outcome: EcgOutcome::Analysed { analysis, trace },
    };
    let stored = repos
        .lab
        .save_ecg(&analysed, &[notice(&order, NotificationKind::EcgAlert)])
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].kind, NotificationKind::EcgAlert);
    let read = repos.lab.find_order(order.id).await.unwrap().unwrap();
    assert_eq!(read.ecg, Some(analysed));
    let failed = EcgRecord {
        order_id: order.id,
        file_id: second.id,
        analyzed_at: micros(now()),
        outcome: EcgOutcome::Failed {
            reason: "the sampling rate must be from 100 to 1000 Hz".into(),
        },
    };
    assert!(repos.lab.save_ecg(&failed, &[]).await.unwrap().is_empty());
    let read = repos.lab.find_order(order.id).await.unwrap().unwrap();
    assert_eq!(read.ecg, Some(failed));
}
