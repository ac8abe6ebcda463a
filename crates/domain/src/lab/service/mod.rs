//! The laboratory's use cases, each checked by the access policy and audited: doctors order
//! and release, the laboratory works orders and uploads files, patients read what was
//! released to them.

use std::collections::BTreeSet;
use std::sync::Arc;

use jiff::Timestamp;

use super::{
    AddTestError, AnalyteResult, FileStore, LabChangeError, LabCode, LabOrder, LabOrderChange,
    LabOrderDetail, LabOrderListing, LabOrderQuery, LabOrderStatus, LabRepository, LabTest,
    LabTimings, LabTransitionError, MAX_TESTS_PER_ORDER, NewLabOrder, auto_release_key,
};
use crate::access::{AccessError, Action, Actor, Basis, Relationship};
use crate::audit::{AuditAction, AuditEvent, Gatekeeper};
use crate::identity::Role;
use crate::jobs::JobChanges;
use crate::kernel::{
    LabOrderId, Page, PageRequest, PatientId, RepositoryError, Text, ValidationErrors,
};
use crate::notifications::{
    NewNotification, NotificationData, NotificationKind, NotificationPublisher, Recipient,
    publish_committed,
};
use crate::patients::PatientRepository;

mod files;

pub use files::*;

/// Why a laboratory operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The caller may not do this (403).
    #[error("you may not do this")]
    Forbidden,
    /// No such patient, or none the caller may see (404).
    #[error("no such patient")]
    NotFound,
    /// No such order, or none the caller may see (404).
    #[error("no such lab order")]
    OrderNotFound,
    /// No such file on the order (404).
    #[error("no such file")]
    FileNotFound,
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    /// The order's status does not allow it (409), or only its doctor may (403).
    #[error(transparent)]
    Transition(#[from] LabTransitionError),
    /// The order changed meanwhile (409).
    #[error("the order was changed meanwhile; reload it")]
    Moved,
    /// A test with this code is in the catalogue already (409).
    #[error("a test with this code exists")]
    DuplicateTest,
    #[error(transparent)]
    Internal(#[from] RepositoryError),
}

impl From<AccessError> for LabError {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::Forbidden => Self::Forbidden,
            AccessError::NotFound => Self::NotFound,
            AccessError::Internal(e) => Self::Internal(e),
        }
    }
}

impl From<LabChangeError> for LabError {
    fn from(error: LabChangeError) -> Self {
        match error {
            LabChangeError::Moved => Self::Moved,
            LabChangeError::Repository(e) => Self::Internal(e),
        }
    }
}

/// One measured value as the laboratory enters it.
#[derive(Debug, Clone, PartialEq)]
pub struct MeasuredValue {
    pub test: LabCode,
    pub analyte: LabCode,
    pub value: f64,
}

/// The results of an order as the laboratory enters them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RecordResults {
    pub values: Vec<MeasuredValue>,
    pub findings: Option<Text>,
}

/// The laboratory.
#[derive(Clone)]
pub struct LabService {
    gate: Gatekeeper,
    lab: Arc<dyn LabRepository>,
    files: Arc<dyn FileStore>,
    patients: Arc<dyn PatientRepository>,
    publisher: Arc<dyn NotificationPublisher>,
    timings: LabTimings,
}

impl std::fmt::Debug for LabService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LabService").finish_non_exhaustive()
    }
}

impl LabService {
    pub fn new(
        gate: Gatekeeper,
        lab: Arc<dyn LabRepository>,
        files: Arc<dyn FileStore>,
        patients: Arc<dyn PatientRepository>,
        publisher: Arc<dyn NotificationPublisher>,
    ) -> Self {
        Self {
            gate,
            lab,
            files,
            patients,
            publisher,
            timings: LabTimings::default(),
        }
    }

    /// The same service, on these clocks.
    #[must_use]
    pub fn with_timings(mut self, timings: LabTimings) -> Self {
        self.timings = timings;
        self
    }
}

/// The notification data of an order: its id and a title, never a name or a value.
pub(crate) fn order_data(order: &LabOrder, title: &str, urgent: bool) -> NotificationData {
    NotificationData {
        title: title.to_owned(),
        patient_id: Some(*order.patient_id.as_uuid()),
        lab_order_id: Some(*order.id.as_uuid()),
        urgent,
        ..NotificationData::default()
    }
}

impl LabService {
    /// The test catalogue: for doctors, the laboratory and administrators.
    ///
    /// # Errors
    /// `Forbidden`, `Internal`.
    pub async fn catalogue(&self, actor: &Actor) -> Result<Vec<LabTest>, LabError> {
        actor.permit(Action::ReadLabCatalogue, Relationship::None)?;
        Ok(self.lab.catalogue().await?)
    }

    /// Adds a test to the catalogue: administrators only.
    ///
    /// # Errors
    /// `Forbidden`, `DuplicateTest`, `Internal`.
    pub async fn add_test(&self, actor: &Actor, test: LabTest) -> Result<LabTest, LabError> {
        actor.permit(Action::ManageLabCatalogue, Relationship::None)?;
        match self.lab.add_test(&test).await {
            Ok(()) => Ok(test),
            Err(AddTestError::Duplicate) => Err(LabError::DuplicateTest),
            Err(AddTestError::Repository(e)) => Err(e.into()),
        }
    }

    /// Refuses, audited, a caller whose role may never do `action` before their request is
    /// read.
    ///
    /// # Errors
    /// `Forbidden`, `Internal`.
    pub async fn check_role(
        &self,
        actor: &Actor,
        action: Action,
        audit_as: AuditAction,
    ) -> Result<(), LabError> {
        Ok(self.gate.check_role(actor, action, audit_as).await?)
    }

    /// A doctor of the patient's care team orders tests of the catalogue.
    ///
    /// # Errors
    /// `Forbidden`, `NotFound` (no such patient, or not one of the doctor's), `Invalid`
    /// (unknown or repeated tests), `Internal`.
    pub async fn order(&self, actor: &Actor, new: NewLabOrder) -> Result<LabOrderDetail, LabError> {
        let basis = self
            .gate
            .decide_on_patient(actor, new.patient_id, Action::OrderLabTests)
            .await?;
        let catalogue = self.lab.catalogue().await?;
        let mut errors = ValidationErrors::new();
        let mut seen = BTreeSet::new();
        for code in &new.tests {
            if !catalogue.iter().any(|t| &t.code == code) {
                errors.add("tests", format!("unknown test: {code}"));
            } else if !seen.insert(code.clone()) {
                errors.add("tests", format!("{code} is listed twice"));
            }
        }
        if new.tests.is_empty() || new.tests.len() > MAX_TESTS_PER_ORDER {
            errors.add(
                "tests",
                format!("must list 1 to {MAX_TESTS_PER_ORDER} tests"),
            );
        }
        errors.into_result()?;
        let now = self.gate.now();
        let order = LabOrder::place(new, actor.user_id(), now);
        let event = self.gate.event(
            actor,
            Some(order.patient_id),
            AuditAction::LabOrderCreate,
            Some(basis),
            now,
        );
        self.lab.create_order(&order, &event).await?;
        // Read back for the patient's summary and the doctor's name; the creation's own event
        // covers it, so no read is audited.
        self.lab
            .find_order(order.id)
            .await?
            .ok_or_else(|| RepositoryError::new("a lab order just created is missing").into())
    }

    /// The order, if the caller may see it under `action`: the laboratory any order; a doctor
    /// those of their care-team patients (or under an emergency access, for reading); a
    /// patient their own, once released. A refusal is audited as `audit_as`.
    async fn authorized(
        &self,
        actor: &Actor,
        id: LabOrderId,
        action: Action,
        audit_as: AuditAction,
    ) -> Result<(LabOrderDetail, Basis), LabError> {
        if !Gatekeeper::role_may_ever(actor, action) {
            return Err(self
                .gate
                .deny(actor, None, audit_as, LabError::Forbidden)
                .await);
        }
        let Some(detail) = self.lab.find_order(id).await? else {
            return Err(self
                .gate
                .deny(actor, None, audit_as, LabError::OrderNotFound)
                .await);
        };
        let patient_id = detail.listing.order.patient_id;
        let basis = if actor.role() == Role::Laboratory {
            self.gate
                .decide(
                    actor,
                    Relationship::None,
                    action,
                    audit_as,
                    Some(patient_id),
                )
                .await?
        } else {
            self.gate
                .decide_on_patient_as(actor, patient_id, action, Some(audit_as))
                .await
                .map_err(|e| e.hiding_as(LabError::OrderNotFound))?
        };
        if actor.role() == Role::Patient && detail.listing.order.status != LabOrderStatus::Released
        {
            return Err(self
                .gate
                .deny(actor, Some(patient_id), audit_as, LabError::OrderNotFound)
                .await);
        }
        Ok((detail, basis))
    }

    /// One order with its results, files and ECG analysis; the read is audited.
    ///
    /// # Errors
    /// `Forbidden`, `OrderNotFound`, `Internal`.
    pub async fn get(&self, actor: &Actor, id: LabOrderId) -> Result<LabOrderDetail, LabError> {
        let (detail, basis) = self
            .authorized(actor, id, Action::AccessLabOrder, AuditAction::LabOrderRead)
            .await?;
        self.gate
            .allowed(
                actor,
                detail.listing.order.patient_id,
                AuditAction::LabOrderRead,
                basis,
            )
            .await?;
        Ok(detail)
    }

    /// Orders the caller may see: the laboratory's queue (open orders unless statuses are
    /// given); a doctor's own orders, or one care-team patient's; a patient's released
    /// orders. Each patient listed is audited.
    ///
    /// # Errors
    /// `Forbidden`, `NotFound` (a patient the caller may not see), `Internal`.
    pub async fn list(
        &self,
        actor: &Actor,
        patient_id: Option<PatientId>,
        statuses: Vec<LabOrderStatus>,
        page: PageRequest<LabOrderId>,
    ) -> Result<Page<LabOrderListing, LabOrderId>, LabError> {
        let mut query = LabOrderQuery {
            patient_id,
            ordered_by: None,
            statuses,
        };
        // `None`: each patient listed is decided on its own (a doctor's own orders).
        let basis = match (actor.role(), patient_id) {
            (Role::Laboratory, _) => {
                if query.statuses.is_empty() {
                    query.statuses = LabOrderStatus::OPEN.to_vec();
                }
                Some(Basis::Role)
            }
            (Role::Doctor, Some(patient)) => Some(
                self.gate
                    .decide_on_patient_as(
                        actor,
                        patient,
                        Action::AccessLabOrder,
                        Some(AuditAction::LabOrderList),
                    )
                    .await?,
            ),
            (Role::Doctor, None) => {
                query.ordered_by = Some(actor.user_id());
                None
            }
            (Role::Patient, _) => {
                let own = self.patients.find_by_user(actor.user_id()).await?;
                let Some(own) = own.filter(|p| patient_id.is_none_or(|id| id == p.id)) else {
                    return Err(self
                        .gate
                        .deny(
                            actor,
                            patient_id,
                            AuditAction::LabOrderList,
                            LabError::NotFound,
                        )
                        .await);
                };
                query.patient_id = Some(own.id);
                query.statuses = vec![LabOrderStatus::Released];
                Some(Basis::OwnRecord)
            }
            (Role::Secretary | Role::Admin, _) => {
                return Err(self
                    .gate
                    .deny(
                        actor,
                        patient_id,
                        AuditAction::LabOrderList,
                        LabError::Forbidden,
                    )
                    .await);
            }
        };
        let mut page = self.lab.list_orders(&query, page).await?;
        let now = self.gate.now();
        let patients: BTreeSet<PatientId> = page.items.iter().map(|l| l.order.patient_id).collect();
        let mut allowed = Vec::with_capacity(patients.len());
        for patient in patients {
            let on = match basis {
                Some(basis) => Some(basis),
                // A doctor sees their own orders only while the patient is theirs to read:
                // those of a patient who left their care are left out of the page.
                None => {
                    self.gate
                        .basis_on_patient(actor, patient, Action::AccessLabOrder)
                        .await?
                }
            };
            if let Some(on) = on {
                allowed.push((patient, on));
            }
        }
        page.items
            .retain(|l| allowed.iter().any(|(p, _)| *p == l.order.patient_id));
        let events = allowed
            .into_iter()
            .map(|(p, on)| {
                self.gate
                    .event(actor, Some(p), AuditAction::LabOrderList, Some(on), now)
            })
            .collect();
        self.gate.record(events).await?;
        Ok(page)
    }

    /// Writes `order`, changed from status `from`, with its audit event, notifications and
    /// jobs; publishes the notifications once committed.
    async fn commit(
        &self,
        order: &LabOrder,
        from: LabOrderStatus,
        audit: &AuditEvent,
        notifications: &[NewNotification],
        jobs: &JobChanges,
    ) -> Result<(), LabError> {
        let stored = self
            .lab
            .change_order(LabOrderChange {
                order,
                from,
                audit: Some(audit),
                notifications,
                jobs,
            })
            .await?;
        publish_committed(self.publisher.as_ref(), &stored).await;
        Ok(())
    }

    /// The laboratory gives (or moves) the order's appointment.
    ///
    /// # Errors
    /// `Forbidden`, `OrderNotFound`, `Transition`, `Moved`, `Internal`.
    pub async fn schedule(
        &self,
        actor: &Actor,
        id: LabOrderId,
        at: Timestamp,
    ) -> Result<LabOrderDetail, LabError> {
        self.process(actor, id, AuditAction::LabOrderUpdate, |order, now| {
            order.schedule(at, now)
        })
        .await
    }

    /// The laboratory took the sample or made the recording.
    ///
    /// # Errors
    /// `Forbidden`, `OrderNotFound`, `Transition`, `Moved`, `Internal`.
    pub async fn collect(&self, actor: &Actor, id: LabOrderId) -> Result<LabOrderDetail, LabError> {
        self.process(actor, id, AuditAction::LabOrderUpdate, LabOrder::collect)
            .await
    }

    async fn process(
        &self,
        actor: &Actor,
        id: LabOrderId,
        audit_as: AuditAction,
        step: impl FnOnce(&mut LabOrder, Timestamp) -> Result<(), LabTransitionError>,
    ) -> Result<LabOrderDetail, LabError> {
        let (mut detail, basis) = self
            .authorized(actor, id, Action::ProcessLabOrder, audit_as)
            .await?;
        let order = &mut detail.listing.order;
        let from = order.status;
        let now = self.gate.now();
        step(order, now)?;
        let event = self
            .gate
            .event(actor, Some(order.patient_id), audit_as, Some(basis), now);
        self.commit(order, from, &event, &[], &JobChanges::default())
            .await?;
        Ok(detail)
    }

    /// The laboratory records the results: values of the ordered tests' analytes (flagged
    /// against their reference ranges) and findings. The ordering doctor is told at once, as
    /// urgent when a value is critical (and, if that stays unread, the care team later); the
    /// results are released to the patient after the release delay unless a doctor does it
    /// first.
    ///
    /// # Errors
    /// `Forbidden`, `OrderNotFound`, `Invalid`, `Transition`, `Moved`, `Internal`.
    pub async fn record_results(
        &self,
        actor: &Actor,
        id: LabOrderId,
        input: RecordResults,
    ) -> Result<LabOrderDetail, LabError> {
        let (mut detail, basis) = self
            .authorized(
                actor,
                id,
                Action::ProcessLabOrder,
                AuditAction::LabResultRecord,
            )
            .await?;
        let catalogue = self.lab.catalogue().await?;
        let order = &mut detail.listing.order;
        let results = judge(order, &catalogue, &input.values)?;
        if results.is_empty() && input.findings.is_none() && detail.files.is_empty() {
            let mut errors = ValidationErrors::new();
            errors.add("values", "give values, findings or files");
            return Err(errors.into());
        }
        let from = order.status;
        let now = self.gate.now();
        order.record_results(results, input.findings, actor.user_id(), now)?;
        let critical = order.has_critical();
        let mut notices = vec![NewNotification {
            recipient: Recipient::User(order.ordered_by),
            kind: NotificationKind::LabResulted,
            data: order_data(order, "Lab results are in", critical),
        }];
        let mut jobs = JobChanges::add(
            self.timings
                .release_job(order.id, now)
                .into_iter()
                .collect(),
        );
        if critical {
            notices.push(NewNotification {
                recipient: Recipient::User(order.ordered_by),
                kind: NotificationKind::LabCritical,
                data: order_data(order, "Critical lab result", true),
            });
            jobs.add.extend(self.timings.escalation_job(order.id, now));
        }
        let event = self.gate.event(
            actor,
            Some(order.patient_id),
            AuditAction::LabResultRecord,
            Some(basis),
            now,
        );
        self.commit(order, from, &event, &notices, &jobs).await?;
        Ok(detail)
    }

    /// A doctor of the care team releases the results to the patient, who is told.
    ///
    /// # Errors
    /// `Forbidden`, `OrderNotFound`, `Transition`, `Moved`, `Internal`.
    pub async fn release(&self, actor: &Actor, id: LabOrderId) -> Result<LabOrderDetail, LabError> {
        let (mut detail, basis) = self
            .authorized(
                actor,
                id,
                Action::ReleaseLabResults,
                AuditAction::LabResultRelease,
            )
            .await?;
        let now = self.gate.now();
        let order = &mut detail.listing.order;
        let from = order.status;
        order.release(Some(actor.user_id()), now)?;
        let event = self.gate.event(
            actor,
            Some(order.patient_id),
            AuditAction::LabResultRelease,
            Some(basis),
            now,
        );
        let notices = self.released_notices(order).await?;
        let jobs = JobChanges {
            cancel: vec![auto_release_key(order.id)],
            add: Vec::new(),
        };
        self.commit(order, from, &event, &notices, &jobs).await?;
        Ok(detail)
    }

    /// The patient's account is told of released results, if they have one.
    pub(crate) async fn released_notices(
        &self,
        order: &LabOrder,
    ) -> Result<Vec<NewNotification>, RepositoryError> {
        let patient = self.patients.find(order.patient_id).await?;
        Ok(patient
            .and_then(|p| p.details.user_id)
            .map(|user| NewNotification {
                recipient: Recipient::User(user),
                kind: NotificationKind::LabReleased,
                data: order_data(order, "Your lab results are available", false),
            })
            .into_iter()
            .collect())
    }

    /// The ordering doctor withdraws the order before it is resulted.
    ///
    /// # Errors
    /// `Forbidden`, `OrderNotFound`, `Transition` (not the orderer; too late), `Moved`,
    /// `Internal`.
    pub async fn cancel(&self, actor: &Actor, id: LabOrderId) -> Result<LabOrderDetail, LabError> {
        let (mut detail, basis) = self
            .authorized(
                actor,
                id,
                Action::OrderLabTests,
                AuditAction::LabOrderCancel,
            )
            .await?;
        let now = self.gate.now();
        let order = &mut detail.listing.order;
        let from = order.status;
        if let Err(error) = order.cancel(actor.user_id(), now) {
            if error == LabTransitionError::NotOrderer {
                return Err(self
                    .gate
                    .deny(
                        actor,
                        Some(order.patient_id),
                        AuditAction::LabOrderCancel,
                        LabError::Transition(error),
                    )
                    .await);
            }
            return Err(error.into());
        }
        let event = self.gate.event(
            actor,
            Some(order.patient_id),
            AuditAction::LabOrderCancel,
            Some(basis),
            now,
        );
        self.commit(order, from, &event, &[], &JobChanges::default())
            .await?;
        Ok(detail)
    }
}

/// The results of `values` for `order`: each an analyte of an ordered test, given once,
/// finite, flagged against the catalogue's range.
fn judge(
    order: &LabOrder,
    catalogue: &[LabTest],
    values: &[MeasuredValue],
) -> Result<Vec<AnalyteResult>, ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let mut results = Vec::with_capacity(values.len());
    let mut seen = BTreeSet::new();
    for (i, value) in values.iter().enumerate() {
        let field = format!("values[{i}]");
        let test = catalogue
            .iter()
            .find(|t| t.code == value.test)
            .filter(|_| order.tests.contains(&value.test));
        let Some(test) = test else {
            errors.add(format!("{field}.test"), "is not a test of this order");
            continue;
        };
        let Some(analyte) = test.analyte(&value.analyte) else {
            errors.add(format!("{field}.analyte"), "is not an analyte of this test");
            continue;
        };
        if !value.value.is_finite() {
            errors.add(format!("{field}.value"), "must be a finite number");
            continue;
        }
        if !seen.insert((value.test.clone(), value.analyte.clone())) {
            errors.add(format!("{field}.analyte"), "is given twice");
            continue;
        }
        results.push(AnalyteResult {
            test: test.code.clone(),
            analyte: analyte.code.clone(),
            name: analyte.name.as_str().to_owned(),
            value: value.value,
            unit: analyte.unit.as_ref().map(|u| u.as_str().to_owned()),
            range: analyte.range,
            flag: analyte
                .range
                .map_or(super::ResultFlag::Normal, |r| r.flag(value.value)),
        });
    }
    errors.into_result()?;
    Ok(results)
}
