//! `JobQueue`: jobs stored, claimed for a lease, finished, listed and retried.

use std::collections::HashSet;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::Barrier;

use carehub_domain::jobs::{
    AfterFailure, Claim, ClaimedJob, JobFilter, JobId, JobKind, JobState, NewJob, RetryJobError,
    RetryPolicy, Task,
};
use carehub_domain::kernel::PageRequest;
use carehub_infra::testing::ScratchDatabase;
use carehub_infra::{Database, Repositories};

use crate::fixtures::{micros, now};

contract!(
    due_jobs_are_claimed_oldest_first_and_later_ones_wait,
    a_pending_unique_key_keeps_out_a_second_job_until_the_first_is_done,
    concurrent_claims_never_hold_one_job_twice,
    an_expired_lease_frees_the_job_and_fences_off_its_old_worker,
    a_lease_that_expires_on_the_last_attempt_leaves_the_job_dead,
    an_extended_lease_keeps_other_workers_off,
    a_failed_job_waits_for_its_backoff_then_dies_when_its_attempts_are_spent,
    a_released_job_is_due_again_with_its_attempt_uncounted,
    only_failed_and_dead_jobs_are_retried,
    each_occurrence_of_a_recurring_schedule_is_added_once,
    jobs_are_listed_newest_first_by_state_and_kind_and_counted,
    purging_deletes_only_old_succeeded_jobs,
);

contract!(postgres_instances: two_instances_claiming_at_once_never_hold_one_job,);

fn probe(run_at: Timestamp) -> NewJob {
    NewJob::new(
        Task::Probe {
            hold_ms: 0,
            fail_attempts: 0,
        },
        run_at,
    )
}

fn claim(now: Timestamp, limit: u32) -> Claim {
    Claim {
        worker: "test/1".into(),
        now,
        lease: SignedDuration::from_secs(30),
        limit,
    }
}

async fn claim_all(repos: &Repositories, now: Timestamp) -> Vec<ClaimedJob> {
    repos.jobs.claim(&claim(now, 100)).await.unwrap()
}

async fn due_jobs_are_claimed_oldest_first_and_later_ones_wait(repos: Repositories) {
    let at = micros(now());
    let later = probe(at + SignedDuration::from_mins(5));
    let first = probe(at - SignedDuration::from_secs(2));
    let second = probe(at - SignedDuration::from_secs(1));
    let added = repos
        .jobs
        .enqueue(&[later.clone(), second.clone(), first.clone()], at)
        .await
        .unwrap();
    assert_eq!(added, vec![later.id, second.id, first.id]);

    let claimed = repos.jobs.claim(&claim(at, 10)).await.unwrap();
    let ids: Vec<JobId> = claimed.iter().map(|c| c.job.id).collect();
    assert_eq!(
        ids,
        vec![first.id, second.id],
        "due jobs only, oldest run_at first"
    );
    for c in &claimed {
        assert_eq!(c.job.state, JobState::Running);
        assert_eq!(c.job.attempts, 1);
        assert_eq!(c.job.max_attempts, JobKind::Probe.max_attempts());
        assert_eq!(c.job.started_at, Some(at));
        assert_eq!(c.job.locked_until, Some(at + SignedDuration::from_secs(30)));
        assert_eq!(c.job.worker.as_deref(), Some("test/1"));
        assert_eq!(
            c.job.task,
            Task::Probe {
                hold_ms: 0,
                fail_attempts: 0
            }
        );
    }
    assert!(
        claim_all(&repos, at).await.is_empty(),
        "running jobs are not claimed again"
    );

    for held in &claimed {
        assert!(repos.jobs.succeed(held, at).await.unwrap());
    }
    let done = repos.jobs.get(first.id).await.unwrap().unwrap();
    assert_eq!(done.state, JobState::Succeeded);
    assert_eq!(done.finished_at, Some(at));
    assert_eq!(done.locked_until, None);
    assert!(
        !repos.jobs.succeed(&claimed[0], at).await.unwrap(),
        "a finished job is not finished twice"
    );

    let due_later = claim_all(&repos, at + SignedDuration::from_mins(5)).await;
    assert_eq!(due_later.len(), 1);
    assert_eq!(due_later[0].job.id, later.id);
}

async fn a_pending_unique_key_keeps_out_a_second_job_until_the_first_is_done(repos: Repositories) {
    let at = micros(now());
    let one = probe(at).unique("reminder:1");
    let two = probe(at).unique("reminder:1");
    let other = probe(at).unique("reminder:2");
    let added = repos
        .jobs
        .enqueue(&[one.clone(), two.clone(), other.clone()], at)
        .await
        .unwrap();
    assert_eq!(
        added,
        vec![one.id, other.id],
        "the duplicate is left out, silently"
    );
    assert_eq!(repos.jobs.get(two.id).await.unwrap(), None);

    // Still pending while running, and while failed.
    let claimed = claim_all(&repos, at).await;
    let held = claimed.iter().find(|c| c.job.id == one.id).unwrap();
    assert!(
        repos
            .jobs
            .enqueue(&[probe(at).unique("reminder:1")], at)
            .await
            .unwrap()
            .is_empty()
    );
    let retry_at = at + SignedDuration::from_secs(5);
    assert!(
        repos
            .jobs
            .fail(held, "boom", AfterFailure::RetryAt(retry_at), at)
            .await
            .unwrap()
    );
    assert!(
        repos
            .jobs
            .enqueue(&[probe(at).unique("reminder:1")], at)
            .await
            .unwrap()
            .is_empty()
    );

    // Once it is done, the key is free again.
    let again = claim_all(&repos, retry_at).await;
    let held = again.iter().find(|c| c.job.id == one.id).unwrap();
    assert!(repos.jobs.succeed(held, retry_at).await.unwrap());
    let three = probe(at).unique("reminder:1");
    assert_eq!(
        repos
            .jobs
            .enqueue(std::slice::from_ref(&three), at)
            .await
            .unwrap(),
        vec![three.id]
    );
}

/// Claims `jobs` jobs with `workers` concurrent claimers on `queues` (one per instance, or the
/// same one repeated), each claiming up to 3 at a time until nothing is left, and checks that
/// each job was held by exactly one of them.
async fn claim_concurrently(queues: Vec<Repositories>, jobs: usize) {
    let at = micros(now());
    let batch: Vec<NewJob> = (0..jobs).map(|_| probe(at)).collect();
    queues[0].jobs.enqueue(&batch, at).await.unwrap();
    let barrier = Arc::new(Barrier::new(queues.len()));
    let mut tasks = Vec::new();
    for (n, repos) in queues.into_iter().enumerate() {
        let barrier = Arc::clone(&barrier);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut held = Vec::new();
            loop {
                let mut ask = claim(at, 3);
                ask.worker = format!("test/{n}");
                let got = repos.jobs.claim(&ask).await.unwrap();
                if got.is_empty() {
                    break;
                }
                held.extend(got.into_iter().map(|c| c.job.id));
            }
            held
        }));
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    for task in tasks {
        for id in task.await.unwrap() {
            total += 1;
            assert!(seen.insert(id), "job {id} was claimed twice");
        }
    }
    assert_eq!(total, jobs, "every job was claimed");
}

async fn concurrent_claims_never_hold_one_job_twice(repos: Repositories) {
    claim_concurrently(vec![repos.clone(); 8], 60).await;
}

async fn two_instances_claiming_at_once_never_hold_one_job(scratch: &ScratchDatabase) {
    let mut instances: Vec<Database> = Vec::new();
    for _ in 0..2 {
        instances.push(scratch.connect_migrated().await.unwrap());
    }
    let queues = instances
        .iter()
        .flat_map(|db| [db.repositories(), db.repositories(), db.repositories()])
        .collect();
    claim_concurrently(queues, 90).await;
    for db in instances {
        db.close().await;
    }
}

async fn an_expired_lease_frees_the_job_and_fences_off_its_old_worker(repos: Repositories) {
    let at = micros(now());
    let job = probe(at);
    repos
        .jobs
        .enqueue(std::slice::from_ref(&job), at)
        .await
        .unwrap();
    let mut short = claim(at, 1);
    short.lease = SignedDuration::from_secs(1);
    let first = repos.jobs.claim(&short).await.unwrap().pop().unwrap();
    assert!(
        claim_all(&repos, at + SignedDuration::from_millis(999))
            .await
            .is_empty(),
        "held while the lease lasts"
    );

    let later = at + SignedDuration::from_secs(1);
    let second = claim_all(&repos, later)
        .await
        .pop()
        .expect("claimed again once expired");
    assert_eq!(second.job.id, job.id);
    assert_eq!(second.job.attempts, 2, "the lost attempt counts");
    assert_ne!(second.lease, first.lease);

    assert!(
        !repos.jobs.succeed(&first, later).await.unwrap(),
        "the old worker changes nothing"
    );
    assert!(
        !repos
            .jobs
            .fail(&first, "late", AfterFailure::Dead, later)
            .await
            .unwrap()
    );
    assert!(!repos.jobs.release(&first).await.unwrap());
    assert_eq!(repos.jobs.extend(&[first.lease], later).await.unwrap(), 0);
    assert_eq!(
        repos.jobs.get(job.id).await.unwrap().unwrap().state,
        JobState::Running
    );
    assert!(repos.jobs.succeed(&second, later).await.unwrap());
}

async fn a_lease_that_expires_on_the_last_attempt_leaves_the_job_dead(repos: Repositories) {
    let at = micros(now());
    let mut job = probe(at);
    job.max_attempts = 1;
    repos
        .jobs
        .enqueue(std::slice::from_ref(&job), at)
        .await
        .unwrap();
    let mut short = claim(at, 1);
    short.lease = SignedDuration::from_secs(1);
    repos.jobs.claim(&short).await.unwrap();

    let later = at + SignedDuration::from_secs(2);
    assert!(claim_all(&repos, later).await.is_empty());
    let dead = repos.jobs.get(job.id).await.unwrap().unwrap();
    assert_eq!(dead.state, JobState::Dead);
    assert_eq!(dead.finished_at, Some(later));
    assert!(dead.last_error.unwrap().contains("lease expired"));
}

async fn an_extended_lease_keeps_other_workers_off(repos: Repositories) {
    let at = micros(now());
    repos.jobs.enqueue(&[probe(at)], at).await.unwrap();
    let mut short = claim(at, 1);
    short.lease = SignedDuration::from_secs(1);
    let held = repos.jobs.claim(&short).await.unwrap().pop().unwrap();
    let extended = repos
        .jobs
        .extend(&[held.lease], at + SignedDuration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(extended, 1);
    assert!(
        claim_all(&repos, at + SignedDuration::from_secs(30))
            .await
            .is_empty()
    );
    assert!(repos.jobs.succeed(&held, at).await.unwrap());
}

async fn a_failed_job_waits_for_its_backoff_then_dies_when_its_attempts_are_spent(
    repos: Repositories,
) {
    let at = micros(now());
    let mut job = probe(at);
    job.max_attempts = 2;
    repos
        .jobs
        .enqueue(std::slice::from_ref(&job), at)
        .await
        .unwrap();
    let policy = RetryPolicy::default();

    let first = claim_all(&repos, at).await.pop().unwrap();
    let after = policy.after_failure(first.job.attempts, first.job.max_attempts, at, 0.0);
    let AfterFailure::RetryAt(retry_at) = after else {
        panic!("the first failure is retried");
    };
    assert_eq!(retry_at, at + SignedDuration::from_secs(5));
    assert!(
        repos
            .jobs
            .fail(&first, "smtp: connection refused", after, at)
            .await
            .unwrap()
    );
    let failed = repos.jobs.get(job.id).await.unwrap().unwrap();
    assert_eq!(failed.state, JobState::Failed);
    assert_eq!(failed.run_at, retry_at);
    assert_eq!(
        failed.last_error.as_deref(),
        Some("smtp: connection refused")
    );
    assert_eq!(failed.locked_until, None);
    assert!(
        claim_all(&repos, retry_at - SignedDuration::from_micros(1))
            .await
            .is_empty(),
        "not before its backoff"
    );

    let second = claim_all(&repos, retry_at)
        .await
        .pop()
        .expect("due after its backoff");
    assert_eq!(second.job.attempts, 2);
    let after = policy.after_failure(2, 2, retry_at, 0.0);
    assert_eq!(after, AfterFailure::Dead);
    let long = "x".repeat(10_000);
    assert!(
        repos
            .jobs
            .fail(&second, &long, after, retry_at)
            .await
            .unwrap()
    );
    let dead = repos.jobs.get(job.id).await.unwrap().unwrap();
    assert_eq!(dead.state, JobState::Dead);
    assert_eq!(dead.finished_at, Some(retry_at));
    assert!(
        dead.last_error.unwrap().len() <= 2_000,
        "a failure message is bounded"
    );
    assert!(
        claim_all(&repos, retry_at + SignedDuration::from_hours(9))
            .await
            .is_empty()
    );
}

async fn a_released_job_is_due_again_with_its_attempt_uncounted(repos: Repositories) {
    let at = micros(now());
    let job = probe(at + SignedDuration::from_secs(1));
    repos
        .jobs
        .enqueue(std::slice::from_ref(&job), at)
        .await
        .unwrap();
    let later = at + SignedDuration::from_secs(1);
    let held = claim_all(&repos, later).await.pop().unwrap();
    assert!(repos.jobs.release(&held).await.unwrap());
    let released = repos.jobs.get(job.id).await.unwrap().unwrap();
    assert_eq!(released.state, JobState::Scheduled);
    assert_eq!(released.attempts, 0);
    assert_eq!(released.worker, None);
    let again = claim_all(&repos, later)
        .await
        .pop()
        .expect("due again at once");
    assert_eq!(again.job.attempts, 1);
}

async fn only_failed_and_dead_jobs_are_retried(repos: Repositories) {
    let at = micros(now());
    let job = probe(at).unique("email:7");
    repos
        .jobs
        .enqueue(std::slice::from_ref(&job), at)
        .await
        .unwrap();
    assert!(matches!(
        repos.jobs.retry(job.id, at).await,
        Err(RetryJobError::NotRetryable(JobState::Scheduled))
    ));
    assert!(matches!(
        repos.jobs.retry(JobId::generate(), at).await,
        Err(RetryJobError::NotFound)
    ));
    let held = claim_all(&repos, at).await.pop().unwrap();
    repos
        .jobs
        .fail(&held, "gave up", AfterFailure::Dead, at)
        .await
        .unwrap();

    // While another job with its key is pending, the dead one stays dead.
    let newer = probe(at).unique("email:7");
    repos
        .jobs
        .enqueue(std::slice::from_ref(&newer), at)
        .await
        .unwrap();
    assert!(matches!(
        repos.jobs.retry(job.id, at).await,
        Err(RetryJobError::Duplicate)
    ));
    let newer_held = claim_all(&repos, at).await.pop().unwrap();
    repos.jobs.succeed(&newer_held, at).await.unwrap();
    assert!(matches!(
        repos.jobs.retry(newer.id, at).await,
        Err(RetryJobError::NotRetryable(JobState::Succeeded))
    ));

    let later = at + SignedDuration::from_secs(3);
    let retried = repos.jobs.retry(job.id, later).await.unwrap();
    assert_eq!(retried.state, JobState::Scheduled);
    assert_eq!(retried.attempts, 0);
    assert_eq!(retried.run_at, later);
    assert_eq!(retried.finished_at, None);
    assert_eq!(
        retried.last_error.as_deref(),
        Some("gave up"),
        "the last error stays for reading"
    );
    assert_eq!(claim_all(&repos, later).await.pop().unwrap().job.id, job.id);
}

async fn each_occurrence_of_a_recurring_schedule_is_added_once(repos: Repositories) {
    let at = micros(now());
    let occurrence = at + SignedDuration::from_mins(10);
    let job = NewJob::new(Task::PurgeExpired, occurrence);
    assert!(
        repos
            .jobs
            .schedule_occurrence("purge", occurrence, &job)
            .await
            .unwrap()
    );
    // Another instance, and the same instance again after the job ran: no second job.
    let held = claim_all(&repos, occurrence).await.pop().unwrap();
    assert_eq!(held.job.task, Task::PurgeExpired);
    repos.jobs.succeed(&held, occurrence).await.unwrap();
    let again = NewJob::new(Task::PurgeExpired, occurrence);
    assert!(
        !repos
            .jobs
            .schedule_occurrence("purge", occurrence, &again)
            .await
            .unwrap()
    );
    assert_eq!(repos.jobs.get(again.id).await.unwrap(), None);
    // The next occurrence, and another schedule's, are their own.
    let next = occurrence + SignedDuration::from_mins(10);
    let job = NewJob::new(Task::PurgeExpired, next);
    assert!(
        repos
            .jobs
            .schedule_occurrence("purge", next, &job)
            .await
            .unwrap()
    );
    let job = NewJob::new(Task::PurgeExpired, occurrence);
    assert!(
        repos
            .jobs
            .schedule_occurrence("other", occurrence, &job)
            .await
            .unwrap()
    );
}

async fn jobs_are_listed_newest_first_by_state_and_kind_and_counted(repos: Repositories) {
    let at = micros(now());
    let mut probes = Vec::new();
    for _ in 0..5 {
        probes.push(probe(at));
    }
    let purge = NewJob::new(Task::PurgeExpired, at + SignedDuration::from_hours(1));
    let mut all = probes.clone();
    all.push(purge.clone());
    repos.jobs.enqueue(&all, at).await.unwrap();
    let held = repos.jobs.claim(&claim(at, 2)).await.unwrap();
    let running: HashSet<JobId> = held.iter().map(|c| c.job.id).collect();

    let page = repos
        .jobs
        .list(
            JobFilter::default(),
            PageRequest::new(Some(4), None).unwrap(),
        )
        .await
        .unwrap();
    let mut newest_first: Vec<JobId> = all.iter().map(|j| j.id).collect();
    newest_first.reverse();
    assert_eq!(
        page.items.iter().map(|j| j.id).collect::<Vec<_>>(),
        newest_first[..4]
    );
    let rest = repos
        .jobs
        .list(
            JobFilter::default(),
            PageRequest::new(Some(4), page.next).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        rest.items.iter().map(|j| j.id).collect::<Vec<_>>(),
        newest_first[4..]
    );
    assert_eq!(rest.next, None);

    let filter = JobFilter {
        state: Some(JobState::Running),
        kind: Some(JobKind::Probe),
    };
    let listed = repos
        .jobs
        .list(filter, PageRequest::first(50))
        .await
        .unwrap();
    assert_eq!(
        listed.items.iter().map(|j| j.id).collect::<HashSet<_>>(),
        running
    );
    let filter = JobFilter {
        state: None,
        kind: Some(JobKind::PurgeExpired),
    };
    let listed = repos
        .jobs
        .list(filter, PageRequest::first(50))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].id, purge.id);

    let mut counts: Vec<(JobKind, JobState, u64)> = repos
        .jobs
        .counts()
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.kind, c.state, c.count))
        .collect();
    counts.sort_by_key(|(k, s, _)| (k.as_str(), s.as_str()));
    assert_eq!(
        counts,
        vec![
            (JobKind::PurgeExpired, JobState::Scheduled, 1),
            (JobKind::Probe, JobState::Running, 2),
            (JobKind::Probe, JobState::Scheduled, 3),
        ]
    );
}

async fn purging_deletes_only_old_succeeded_jobs(repos: Repositories) {
    let at = micros(now());
    let (old, dead, fresh) = (probe(at), probe(at), probe(at));
    repos
        .jobs
        .enqueue(&[old.clone(), dead.clone(), fresh.clone()], at)
        .await
        .unwrap();
    for held in claim_all(&repos, at).await {
        if held.job.id == old.id {
            repos.jobs.succeed(&held, at).await.unwrap();
        } else if held.job.id == dead.id {
            repos
                .jobs
                .fail(&held, "no", AfterFailure::Dead, at)
                .await
                .unwrap();
        } else {
            repos
                .jobs
                .succeed(&held, at + SignedDuration::from_hours(2))
                .await
                .unwrap();
        }
    }
    let purged = repos
        .jobs
        .purge_finished(at + SignedDuration::from_hours(1))
        .await
        .unwrap();
    assert_eq!(purged, 1);
    assert_eq!(repos.jobs.get(old.id).await.unwrap(), None);
    assert!(
        repos.jobs.get(dead.id).await.unwrap().is_some(),
        "dead jobs wait for a person"
    );
    assert!(repos.jobs.get(fresh.id).await.unwrap().is_some());
}
