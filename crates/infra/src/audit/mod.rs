//! The audit trail on SQLite and PostgreSQL, and [`BatchedAuditLog`], which groups concurrent
//! writes into one transaction each so that auditing every request costs one commit per batch
//! rather than one per request.

mod event_sql;

pub(crate) use event_sql::InsertAuditEvent;

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::{Executor, FromRow, Pool, QueryBuilder};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use carehub_domain::audit::{AuditEntry, AuditEvent, AuditEventId, AuditFilter, AuditLog};
use carehub_domain::identity::UserId;
use carehub_domain::kernel::{Page, PageRequest, RepositoryError};
use carehub_domain::patients::PatientId;

use crate::db::backend::{Backend, Param, corrupt, joined_name, storage};
use crate::db::sql_time::DbTime;
use event_sql::AuditRow;

/// Rows per multi-row insert: 9 parameters each stays under SQLite's oldest limit of 999.
const ROWS_PER_INSERT: usize = 100;

/// The append-only audit trail.
#[derive(Debug, Clone)]
pub struct SqlAuditLog<DB: sqlx::Database> {
    pool: Pool<DB>,
}

impl<DB: sqlx::Database> SqlAuditLog<DB> {
    pub fn new(pool: Pool<DB>) -> Self {
        Self { pool }
    }
}

#[derive(sqlx::FromRow)]
struct AuditEntryRow {
    id: Uuid,
    occurred_at: DbTime,
    actor_id: Uuid,
    actor_role: String,
    patient_id: Option<Uuid>,
    action: String,
    outcome: String,
    basis: Option<String>,
    request_id: Option<String>,
    actor_name: Option<String>,
}

impl TryFrom<AuditEntryRow> for AuditEntry {
    type Error = RepositoryError;

    fn try_from(row: AuditEntryRow) -> Result<Self, Self::Error> {
        let bad = |e: &dyn std::fmt::Display| corrupt("audit_events", e);
        Ok(AuditEntry {
            event: AuditEvent {
                id: AuditEventId::from_uuid(row.id),
                at: row.occurred_at.0,
                actor_id: UserId::from_uuid(row.actor_id),
                actor_role: row.actor_role.parse().map_err(|e| bad(&e))?,
                patient_id: row.patient_id.map(PatientId::from_uuid),
                action: row.action.parse().map_err(|e: String| bad(&e))?,
                outcome: row.outcome.parse().map_err(|e: String| bad(&e))?,
                basis: row
                    .basis
                    .as_deref()
                    .map(str::parse)
                    .transpose()
                    .map_err(|e: String| bad(&e))?,
                request_id: row.request_id,
            },
            actor_name: joined_name(row.actor_name.as_deref())?,
        })
    }
}

#[async_trait]
impl<DB> AuditLog for SqlAuditLog<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> &'a str: Param<'a, DB>,
    for<'a> Option<&'a str>: Param<'a, DB>,
    for<'a> Option<&'a Uuid>: Param<'a, DB>,
    for<'a> Uuid: Param<'a, DB>,
    for<'a> Option<Uuid>: Param<'a, DB>,
    for<'a> DbTime: Param<'a, DB>,
    for<'a> Option<DbTime>: Param<'a, DB>,
    for<'a> i64: Param<'a, DB>,
    for<'r> AuditEntryRow: FromRow<'r, DB::Row>,
{
    async fn record(&self, events: Vec<AuditEvent>) -> Result<(), RepositoryError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut tx = DB::begin_write(&self.pool).await.map_err(storage)?;
        for chunk in events.chunks(ROWS_PER_INSERT) {
            let mut insert = QueryBuilder::<DB>::new(
                "INSERT INTO audit_events (id, occurred_at, actor_id, actor_role, \
                 patient_id, action, outcome, basis, request_id) ",
            );
            insert.push_values(chunk.iter().map(AuditRow::from), |mut values, row| {
                values
                    .push_bind(row.id)
                    .push_bind(row.occurred_at)
                    .push_bind(row.actor_id)
                    .push_bind(row.actor_role)
                    .push_bind(row.patient_id)
                    .push_bind(row.action)
                    .push_bind(row.outcome)
                    .push_bind(row.basis)
                    .push_bind(row.request_id);
            });
            // Batches vary in size: keep their statements out of the statement cache.
            insert
                .build()
                .persistent(false)
                .execute(&mut *tx)
                .await
                .map_err(storage)?;
        }
        tx.commit().await.map_err(storage)
    }

    async fn list(
        &self,
        filter: AuditFilter,
        page: PageRequest<AuditEventId>,
    ) -> Result<Page<AuditEntry, AuditEventId>, RepositoryError> {
        // Ids are UUIDv7: id order is time order.
        let rows = sqlx::query_as::<_, AuditEntryRow>(
            "SELECT a.id, a.occurred_at, a.actor_id, a.actor_role, a.patient_id, \
             a.action, a.outcome, a.basis, a.request_id, u.full_name AS actor_name \
             FROM audit_events a LEFT JOIN users u ON u.id = a.actor_id \
             WHERE ($1 IS NULL OR a.patient_id = $1) \
             AND ($2 IS NULL OR a.actor_id = $2) \
             AND ($3 IS NULL OR a.occurred_at >= $3) \
             AND ($4 IS NULL OR a.occurred_at < $4) \
             AND ($5 IS NULL OR a.id < $5) \
             ORDER BY a.id DESC LIMIT $6",
        )
        .bind(filter.patient_id.as_ref().map(PatientId::as_uuid))
        .bind(filter.actor_id.as_ref().map(UserId::as_uuid))
        .bind(filter.from.map(DbTime))
        .bind(filter.to.map(DbTime))
        .bind(page.after().map(AuditEventId::as_uuid))
        .bind(i64::from(page.limit()) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(storage)?;
        let entries = rows
            .into_iter()
            .map(AuditEntry::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(entries, page.limit(), |entry| {
            entry.event.id
        }))
    }
}

// ---- Group commit ------------------------------------------------------------------------------

/// The most `record` calls written together in one transaction.
const MAX_BATCH: usize = 512;
/// The most `record` calls waiting for the writer; further callers wait to queue.
const QUEUE_CAPACITY: usize = 4 * MAX_BATCH;

/// One caller's events and where to tell it they are stored.
struct Request {
    events: Vec<AuditEvent>,
    reply: oneshot::Sender<Result<(), RepositoryError>>,
}

/// An [`AuditLog`] that hands writes to one background task, which stores every write queued
/// meanwhile with one `record` on the inner log: concurrent requests share a transaction and its
/// commit. `record` still returns only once its events are stored, so a request whose audit
/// succeeded never loses its event.
pub struct BatchedAuditLog {
    inner: Arc<dyn AuditLog>,
    requests: mpsc::Sender<Request>,
}

impl std::fmt::Debug for BatchedAuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchedAuditLog").finish_non_exhaustive()
    }
}

impl BatchedAuditLog {
    /// Starts the writer task; it ends once this log is dropped and the queue is drained.
    ///
    /// # Panics
    /// When called outside a tokio runtime.
    pub fn spawn(inner: Arc<dyn AuditLog>) -> Self {
        let (requests, queue) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(write_batches(Arc::clone(&inner), queue));
        Self { inner, requests }
    }
}

/// The writer: takes everything queued, stores it in one `record`, answers every caller.
async fn write_batches(inner: Arc<dyn AuditLog>, mut queue: mpsc::Receiver<Request>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let events: Vec<AuditEvent> = batch
            .iter_mut()
            .flat_map(|request: &mut Request| std::mem::take(&mut request.events))
            .collect();
        let count = events.len();
        // On its own task, so that a panicking inner log fails this batch, not every later one.
        let inner = Arc::clone(&inner);
        let outcome = match tokio::spawn(async move { inner.record(events).await }).await {
            Ok(outcome) => outcome.map_err(|e| e.to_string()),
            Err(join_error) => Err(join_error.to_string()),
        };
        if let Err(cause) = &outcome {
            tracing::error!(
                error = %cause,
                requests = batch.len(),
                events = count,
                "a batch of audit events could not be stored"
            );
        }
        for request in batch.drain(..) {
            let reply = match &outcome {
                Ok(()) => Ok(()),
                Err(cause) => Err(RepositoryError::new(format!(
                    "the audit batch could not be stored: {cause}"
                ))),
            };
            // A caller that stopped waiting needs no answer.
            let _ = request.reply.send(reply);
        }
    }
}

#[async_trait]
impl AuditLog for BatchedAuditLog {
    async fn record(&self, events: Vec<AuditEvent>) -> Result<(), RepositoryError> {
        if events.is_empty() {
            return Ok(());
        }
        let (reply, stored) = oneshot::channel();
        self.requests
            .send(Request { events, reply })
            .await
            .map_err(|_| RepositoryError::new("the audit writer has stopped"))?;
        stored
            .await
            .map_err(|_| RepositoryError::new("the audit writer stopped before answering"))?
    }

    async fn list(
        &self,
        filter: AuditFilter,
        page: PageRequest<AuditEventId>,
    ) -> Result<Page<AuditEntry, AuditEventId>, RepositoryError> {
        self.inner.list(filter, page).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::Duration;

    use carehub_domain::audit::{AuditAction, Outcome};
    use carehub_domain::identity::Role;
    use jiff::Timestamp;

    use super::*;

    /// An inner log that takes a while to commit, counts its calls, and fails or panics on
    /// demand.
    #[derive(Default)]
    struct SlowLog {
        calls: AtomicUsize,
        stored: Mutex<Vec<AuditEvent>>,
        fail: AtomicBool,
        panic: AtomicBool,
    }

    impl SlowLog {
        fn stored_ids(&self) -> Vec<AuditEventId> {
            self.stored.lock().unwrap().iter().map(|e| e.id).collect()
        }
    }

    #[async_trait]
    impl AuditLog for SlowLog {
        async fn record(&self, events: Vec<AuditEvent>) -> Result<(), RepositoryError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(5)).await;
            assert!(!self.panic.load(Ordering::SeqCst), "the inner log panics");
            if self.fail.load(Ordering::SeqCst) {
                return Err(RepositoryError::new("disk full"));
            }
            self.stored.lock().unwrap().extend(events);
            Ok(())
        }

        async fn list(
            &self,
            _filter: AuditFilter,
            _page: PageRequest<AuditEventId>,
        ) -> Result<Page<AuditEntry, AuditEventId>, RepositoryError> {
            let items = self
                .stored
                .lock()
                .unwrap()
                .iter()
                .map(|event| AuditEntry {
                    event: event.clone(),
                    actor_name: None,
                })
                .collect();
            Ok(Page { items, next: None })
        }
    }

    fn event() -> AuditEvent {
        AuditEvent {
            id: AuditEventId::generate(),
            at: Timestamp::now(),
            actor_id: UserId::generate(),
            actor_role: Role::Doctor,
            patient_id: Some(PatientId::generate()),
            action: AuditAction::PatientRead,
            outcome: Outcome::Allowed,
            basis: None,
            request_id: None,
        }
    }

    /// Records `n` single events concurrently; each caller checks, as soon as it is answered
    /// `Ok`, that its event is already stored.
    async fn record_concurrently(
        log: &Arc<BatchedAuditLog>,
        inner: &Arc<SlowLog>,
        n: usize,
    ) -> Vec<Result<(), RepositoryError>> {
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let (log, inner) = (Arc::clone(log), Arc::clone(inner));
                tokio::spawn(async move {
                    let event = event();
                    let outcome = log.record(vec![event.clone()]).await;
                    if outcome.is_ok() {
                        assert!(
                            inner.stored_ids().contains(&event.id),
                            "record returned before its event was stored"
                        );
                    }
                    outcome
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.unwrap());
        }
        outcomes
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_records_share_few_inner_writes_and_all_are_stored() {
        let inner = Arc::new(SlowLog::default());
        let log = Arc::new(BatchedAuditLog::spawn(inner.clone()));

        let outcomes = record_concurrently(&log, &inner, 200).await;

        assert!(outcomes.iter().all(Result::is_ok));
        let calls = inner.calls.load(Ordering::SeqCst);
        assert!(calls <= 20, "200 records took {calls} inner writes");
        let mut stored = inner.stored_ids();
        assert_eq!(stored.len(), 200);
        stored.sort();
        stored.dedup();
        assert_eq!(stored.len(), 200, "each event is stored once");
    }

    #[tokio::test]
    async fn every_event_of_a_multi_event_record_is_stored_and_empty_records_are_free() {
        let inner = Arc::new(SlowLog::default());
        let log = BatchedAuditLog::spawn(inner.clone());
        let events = vec![event(), event(), event()];
        log.record(events.clone()).await.unwrap();
        log.record(Vec::new()).await.unwrap();
        assert_eq!(
            inner.stored_ids(),
            events.iter().map(|e| e.id).collect::<Vec<_>>()
        );
        assert_eq!(inner.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_failed_inner_write_fails_every_waiter_and_later_writes_succeed() {
        let inner = Arc::new(SlowLog::default());
        let log = Arc::new(BatchedAuditLog::spawn(inner.clone()));

        inner.fail.store(true, Ordering::SeqCst);
        let outcomes = record_concurrently(&log, &inner, 50).await;
        assert!(outcomes.iter().all(Result::is_err), "every waiter is told");
        assert!(inner.stored_ids().is_empty());

        inner.fail.store(false, Ordering::SeqCst);
        let outcomes = record_concurrently(&log, &inner, 10).await;
        assert!(outcomes.iter().all(Result::is_ok));
        assert_eq!(inner.stored_ids().len(), 10);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_panicking_inner_write_fails_its_waiters_without_stopping_the_writer() {
        let inner = Arc::new(SlowLog::default());
        let log = Arc::new(BatchedAuditLog::spawn(inner.clone()));

        inner.panic.store(true, Ordering::SeqCst);
        let outcomes = record_concurrently(&log, &inner, 5).await;
        assert!(outcomes.iter().all(Result::is_err));

        inner.panic.store(false, Ordering::SeqCst);
        log.record(vec![event()]).await.unwrap();
        assert_eq!(inner.stored_ids().len(), 1);
    }

    #[tokio::test]
    async fn list_reads_the_inner_log() {
        let inner = Arc::new(SlowLog::default());
        let log = BatchedAuditLog::spawn(inner.clone());
        let recorded = event();
        log.record(vec![recorded.clone()]).await.unwrap();
        let page = log
            .list(AuditFilter::default(), PageRequest::first(10))
            .await
            .unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].event, recorded);
    }
}
