//! Feedback from outside: the patient rates a completed appointment once; a doctor reads their
//! own ratings without who wrote them; an administrator reads everyone's and hides a comment.
//! Every caller who must be refused is.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use uuid::Uuid;

use carehub_tests::clinic::{Call, Clinic};
use carehub_tests::schedule::{booking, day_at, uuid_of};
use carehub_tests::{
    TestApp, assert_forbidden, assert_problem_type, assert_unauthorized, backend_tests, header,
    problem_fields,
};

fn feedback_path(appointment: Uuid) -> String {
    format!("/api/v1/appointments/{appointment}/feedback")
}

fn doctor_feedback_path(doctor: Uuid) -> String {
    format!("/api/v1/doctors/{doctor}/feedback")
}

/// An appointment of Ann with dr.house, booked by the secretary, taken to `until` (a status).
async fn visit(app: &TestApp, clinic: &Clinic, hour: u8, until: &str) -> Uuid {
    let booked = app
        .book(
            &clinic.secretary.token,
            &booking(
                clinic.doctor.id,
                clinic.ann_record,
                day_at(3, hour, 0),
                None,
            ),
        )
        .await;
    let id = uuid_of(&booked);
    for (status, who) in [
        ("checked_in", &clinic.secretary),
        ("in_progress", &clinic.doctor),
        ("completed", &clinic.doctor),
    ] {
        if until == "booked" {
            break;
        }
        app.set_status(&who.token, id, status, None).await;
        if status == until {
            break;
        }
    }
    id
}

backend_tests! {
    async fn the_patient_rates_a_completed_visit_once_and_the_doctor_reads_it_without_names(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        app.work_every_day(&clinic.admin.token, clinic.doctor.id, "08:00", "18:00").await;
        let done = visit(&app, &clinic, 9, "completed").await;
        let later = visit(&app, &clinic, 10, "completed").await;
        let pending = visit(&app, &clinic, 11, "booked").await;

        let response = app
            .post_json(&feedback_path(done), clinic.ann.token(), &json!({ "rating": 5, "comment": "Took time to explain." }))
            .await;
        assert_eq!(response.status(), 201);
        let request_id = header(&response, "x-request-id").unwrap();
        let given: Value = response.json().await.unwrap();
        assert_eq!(given["rating"], 5);
        assert_eq!(given["appointment_id"], json!(done));
        clinic
            .assert_allowed(&app, &request_id, &clinic.ann, "feedback.create", "own_record", clinic.ann_record)
            .await;
        let response = app.post_json(&feedback_path(later), clinic.ann.token(), &json!({ "rating": 2.0 })).await;
        assert_eq!(response.status(), 201, "a whole number written 2.0 is a rating");

        // Once per appointment, and only once it is completed.
        let again = app.post_json(&feedback_path(done), clinic.ann.token(), &json!({ "rating": 1 })).await;
        assert_problem_type(again, 409, "conflict").await;
        let early = app.post_json(&feedback_path(pending), clinic.ann.token(), &json!({ "rating": 4 })).await;
        assert_problem_type(early, 409, "conflict").await;
        for (body, fields) in [
            (json!({}), vec!["rating"]),
            (json!({ "rating": 6, "comment": "" }), vec!["rating", "comment"]),
            (json!({ "rating": 2.5 }), vec!["rating"]),
        ] {
            let response = app.post_json(&feedback_path(done), clinic.ann.token(), &body).await;
            let problem = assert_problem_type(response, 422, "validation").await;
            assert_eq!(problem_fields(&problem), fields, "{body}");
        }

        // The doctor reads their own: the average, the count, the comments, nobody's name.
        let response = app.get(&doctor_feedback_path(clinic.doctor.id), clinic.doctor.token()).await;
        assert_eq!(response.status(), 200);
        let own: Value = response.json().await.unwrap();
        assert_eq!((own["count"].clone(), own["average"].clone()), (json!(2), json!(3.5)));
        let text = own.to_string();
        for secret in [clinic.ann_record.to_string(), done.to_string(), "Ann".to_owned()] {
            assert!(!text.contains(&secret), "{secret} in {own}");
        }
        assert_eq!(own["items"][1]["comment"], "Took time to explain.");
    }

    async fn nobody_else_rates_and_only_administrators_hide_a_comment(app: TestApp) {
        let clinic = Clinic::open(&app).await;
        app.work_every_day(&clinic.admin.token, clinic.doctor.id, "08:00", "18:00").await;
        let done = visit(&app, &clinic, 9, "completed").await;
        let call = Call::post(feedback_path(done), json!({ "rating": 5 }));
        for who in [&clinic.secretary, &clinic.doctor, &clinic.lab, &clinic.admin] {
            clinic.assert_refused_whatever_the_body(&app, &call, who, 403, "feedback.create", None).await;
        }
        clinic.assert_refused(&app, &call, &clinic.bob, 404, "feedback.create", Some(clinic.ann_record)).await;
        clinic.assert_needs_token(&app, &call).await;
        let unknown = app.post_json(&feedback_path(Uuid::now_v7()), clinic.ann.token(), &json!({ "rating": 5 })).await;
        assert_problem_type(unknown, 404, "not-found").await;

        let given = app
            .post_json(&feedback_path(done), clinic.ann.token(), &json!({ "rating": 1, "comment": "Dr Wilson's patient Bob was rude in the waiting room." }))
            .await;
        assert_eq!(given.status(), 201);
        // Another doctor, a patient, the secretary and the laboratory read no one's feedback.
        for who in [&clinic.outsider, &clinic.ann, &clinic.secretary, &clinic.lab] {
            assert_forbidden(app.get(&doctor_feedback_path(clinic.doctor.id), who.token()).await).await;
        }
        assert_unauthorized(app.get(&doctor_feedback_path(clinic.doctor.id), None).await).await;

        // Only an administrator hides the comment, with a reason; audited; the rating counts.
        let hide = format!("{}/hide", feedback_path(done));
        for who in [&clinic.doctor, &clinic.ann, &clinic.secretary, &clinic.lab] {
            assert_forbidden(app.post_json(&hide, who.token(), &json!({ "reason": "Names a patient" })).await).await;
        }
        let response = app.post_json(&hide, clinic.admin.token(), &json!({})).await;
        let problem = assert_problem_type(response, 422, "validation").await;
        assert_eq!(problem_fields(&problem), ["reason"]);
        let missing = app.post_json(&format!("{}/hide", feedback_path(Uuid::now_v7())), clinic.admin.token(), &json!({ "reason": "x" })).await;
        assert_problem_type(missing, 404, "not-found").await;
        let response = app.post_json(&hide, clinic.admin.token(), &json!({ "reason": "Names another patient" })).await;
        assert_eq!(response.status(), 200);
        let request_id = header(&response, "x-request-id").unwrap();
        let hidden: Value = response.json().await.unwrap();
        assert_eq!(hidden["hidden"]["reason"], "Names another patient");
        assert_eq!(hidden["patient_id"], json!(clinic.ann_record));
        let events = app.audit_of_request(&clinic.admin.token, &request_id).await;
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0]["action"], "feedback.hide");
        assert_eq!(events[0]["patient_id"], json!(clinic.ann_record));

        let own: Value = app.get(&doctor_feedback_path(clinic.doctor.id), clinic.doctor.token()).await.json().await.unwrap();
        assert_eq!(own["count"], 1, "the rating still counts");
        assert!(own["items"][0]["comment"].is_null(), "the doctor no longer sees it: {own}");
        assert!(own["items"][0].get("hidden").is_none(), "{own}");
        let all: Value = app.get(&doctor_feedback_path(clinic.doctor.id), clinic.admin.token()).await.json().await.unwrap();
        assert!(all["items"][0]["comment"].as_str().is_some_and(|c| c.contains("rude")), "{all}");
    }
}
