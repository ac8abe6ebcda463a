//! The job queue as a running server shows it: workers that run due jobs and retry failures,
//! the administrators' list and retry, the metrics, recurring work, a shutdown that gives
//! unfinished jobs back, and everyone but administrators refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use carehub_tests::jobs::probe;
use carehub_tests::{
    TestApp, assert_forbidden, assert_problem, assert_unauthorized, backend_tests,
    backend_tests_with,
};
use serde_json::{Value, json};
use uuid::Uuid;

const JOBS: &str = "/api/v1/admin/jobs";

fn retry_path(id: impl std::fmt::Display) -> String {
    format!("{JOBS}/{id}/retry")
}

const WAIT: Duration = Duration::from_secs(20);

backend_tests! {
    async fn everyone_but_administrators_is_refused_the_queue(app: TestApp) {
        let admin = app.admin("jobs.admin").await;
        let id = app.enqueue(&[probe(0, 0)]).await[0];
        assert_unauthorized(app.get(JOBS, None).await).await;
        assert_unauthorized(app.post_json(&retry_path(id), None, &json!({})).await).await;
        for (username, role) in [
            ("jobs.sec", "secretary"),
            ("jobs.doc", "doctor"),
            ("jobs.lab", "laboratory"),
            ("jobs.pat", "patient"),
        ] {
            let (_, tokens) = app.active_user(username, role, &admin.access_token).await;
            let token = Some(tokens.access_token.as_str());
            assert_forbidden(app.get(JOBS, token).await).await;
            assert_forbidden(app.get(&format!("{JOBS}?state=dead"), token).await).await;
            assert_forbidden(app.post_json(&retry_path(id), token, &json!({})).await).await;
        }
    }

    async fn a_due_job_runs_once_and_is_listed_as_succeeded(app: TestApp) {
        let admin = app.admin("jobs.admin").await;
        let id = app.enqueue(&[probe(10, 0)]).await[0];
        let job = app.wait_for_job(&admin.access_token, id, "succeeded", WAIT).await;
        assert_eq!(job["kind"], "queue.probe");
        assert_eq!(job["args"], json!({"hold_ms": 10, "fail_attempts": 0}));
        assert_eq!(job["attempts"], 1);
        assert!(job["finished_at"].is_string());
        assert!(job["locked_until"].is_null());
        assert!(job["worker"].as_str().unwrap().contains("pid"));
    }

    async fn the_purge_of_expired_credentials_is_scheduled_once_as_recurring_work(app: TestApp) {
        let admin = app.admin("jobs.admin").await;
        let token = admin.access_token.as_str();
        let _second = app.another_instance().await;
        // Both instances schedule on start; one occurrence is in the queue.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let purges = app
            .all_pages(JOBS, token, "kind=maintenance.purge&state=scheduled", 10)
            .await;
        assert_eq!(purges.len(), 1, "{purges:?}");
        let run_at: jiff::Timestamp = purges[0]["run_at"].as_str().unwrap().parse().unwrap();
        assert!(run_at > jiff::Timestamp::now());
        assert!(run_at <= jiff::Timestamp::now() + jiff::SignedDuration::from_mins(10));
        assert_eq!(run_at.as_second() % 600, 0, "every ten minutes, on the minute");
    }

    async fn jobs_are_listed_by_state_and_kind_and_bad_filters_are_refused(app: TestApp) {
        let admin = app.admin("jobs.admin").await;
        let token = admin.access_token.as_str();
        let ids = app.enqueue(&[probe(0, 0), probe(0, 0)]).await;
        for id in &ids {
            app.wait_for_job(token, *id, "succeeded", WAIT).await;
        }
        let probes = app.all_pages(JOBS, token, "kind=queue.probe&state=succeeded", 1).await;
        let listed: Vec<Uuid> = probes.iter().map(|j| j["id"].as_str().unwrap().parse().unwrap()).collect();
        assert_eq!(listed, vec![ids[1], ids[0]], "newest first, across pages");
        assert!(app.all_pages(JOBS, token, "kind=queue.probe&state=dead", 10).await.is_empty());
        for bad in ["state=done", "kind=email", "limit=0", "limit=101", "cursor=nope"] {
            let response = app.get(&format!("{JOBS}?{bad}"), Some(token)).await;
            assert_problem(response, 400).await;
        }
    }

    async fn retrying_refuses_unknown_and_unfinished_jobs(app: TestApp) {
        let admin = app.admin("jobs.admin").await;
        let token = Some(admin.access_token.as_str());
        let missing = app.post_json(&retry_path(Uuid::now_v7()), token, &json!({})).await;
        assert_problem(missing, 404).await;
        let malformed = app.post_json(&retry_path("not-a-job"), token, &json!({})).await;
        assert_problem(malformed, 404).await;
        let id = app.enqueue(&[probe(0, 0)]).await[0];
        app.wait_for_job(&admin.access_token, id, "succeeded", WAIT).await;
        let done = app.post_json(&retry_path(id), token, &json!({})).await;
        let problem = assert_problem(done, 409).await;
        assert!(problem["detail"].as_str().unwrap().contains("succeeded"), "{problem}");
    }

    async fn the_metrics_count_jobs_by_kind_and_state_and_time_them(app: TestApp) {
        let admin = app.admin("jobs.admin").await;
        let id = app.enqueue(&[probe(5, 0)]).await[0];
        app.wait_for_job(&admin.access_token, id, "succeeded", WAIT).await;
        let metrics = app.get("/metrics", None).await.text().await.unwrap();
        assert!(
            metrics.contains(r#"carehub_jobs{kind="queue.probe",state="succeeded"} 1"#),
            "{metrics}"
        );
        assert!(metrics.contains(r#"carehub_jobs{kind="queue.probe",state="dead"} 0"#));
        assert!(metrics.contains(r#"carehub_jobs{kind="maintenance.purge",state="scheduled"} 1"#));
        assert!(metrics.contains(
            r#"carehub_job_duration_seconds_count{kind="queue.probe",outcome="succeeded"} 1"#
        ));
    }
}

mod retries {
    use super::*;

    backend_tests_with! {
        ["--job-retry-base-ms", "100", "--job-poll-ms", "50"];

        async fn a_failing_job_is_retried_with_backoff_then_dead_then_retried_by_an_administrator(app: TestApp) {
            let admin = app.admin("jobs.admin").await;
            let token = admin.access_token.as_str();
            // Probes may be tried 5 times: this one fails all of them.
            let id = app.enqueue(&[probe(0, 5)]).await[0];
            let dead = app.wait_for_job(token, id, "dead", WAIT).await;
            assert_eq!(dead["attempts"], 5);
            assert_eq!(dead["last_error"], "probe attempt 5 of 5 set to fail");
            let created: jiff::Timestamp = dead["created_at"].as_str().unwrap().parse().unwrap();
            let finished: jiff::Timestamp = dead["finished_at"].as_str().unwrap().parse().unwrap();
            // Four waits of at least 50, 100, 200 and 400 ms.
            assert!(finished.duration_since(created) >= jiff::SignedDuration::from_millis(750), "{dead}");

            let retried = app.post_json(&retry_path(id), Some(token), &json!({})).await;
            assert_eq!(retried.status(), 200);
            let retried: Value = retried.json().await.unwrap();
            assert_eq!(retried["state"], "scheduled");
            assert_eq!(retried["attempts"], 0);
            // Its attempts start afresh: it fails five more times and is dead again.
            let dead_again = app.wait_for_job(token, id, "dead", WAIT).await;
            assert_eq!(dead_again["attempts"], 5);
        }
    }
}

mod shutdown {
    use super::*;

    backend_tests_with! {
        ["--job-workers", "1", "--job-poll-ms", "50", "--job-lease-secs", "60"];

        async fn on_shutdown_an_unfinished_job_is_given_back_for_another_instance(app: TestApp) {
            let admin = app.admin("jobs.admin").await;
            let token = admin.access_token.clone();
            let id = app.enqueue(&[probe(30_000, 0)]).await[0];
            app.wait_for_job(&token, id, "running", WAIT).await;
            // The drain time is the test server's shutdown timeout, one second.
            app.stop_gracefully().await;
            let database = carehub_web::startup::connect(&app.settings).await.unwrap();
            let jobs = database.repositories().jobs;
            let job_id = carehub_domain::jobs::JobId::from_uuid(id);
            let deadline = tokio::time::Instant::now() + WAIT;
            loop {
                let job = jobs.get(job_id).await.unwrap().unwrap();
                if job.state == carehub_domain::jobs::JobState::Scheduled {
                    assert_eq!(job.attempts, 0, "the interrupted attempt is not counted");
                    assert_eq!(job.locked_until, None);
                    break;
                }
                assert!(tokio::time::Instant::now() < deadline, "not given back: {job:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            database.close().await;
        }
    }
}

mod serving_only {
    use super::*;

    backend_tests_with! {
        ["--job-workers", "0"];

        async fn an_instance_without_workers_leaves_jobs_to_others(app: TestApp) {
            let admin = app.admin("jobs.admin").await;
            let id = app.enqueue(&[probe(0, 0)]).await[0];
            tokio::time::sleep(Duration::from_millis(1_500)).await;
            let job = app.job(&admin.access_token, id).await;
            assert_eq!(job["state"], "scheduled");
            assert!(
                app.all_pages(JOBS, &admin.access_token, "kind=maintenance.purge", 10).await.is_empty(),
                "nor does it schedule recurring work"
            );
        }
    }
}
