//! One prescription as a page to print: the clinic's name, the patient, what is prescribed,
//! the doctor and the date. Every value is escaped (maud), the page runs no script and loads
//! nothing (its Content-Security-Policy says so), and it is never cached.

use actix_web::http::header;
use actix_web::{HttpResponse, get, web};
use maud::{DOCTYPE, Markup, html};

use carehub_domain::access::Action;
use carehub_domain::audit::AuditAction;
use carehub_domain::prescriptions::{PrescriptionStatus, PrescriptionView};

use crate::extract::Caller;
use crate::problem::{ApiError, Problem, Unauthenticated};
use crate::state::{AppState, Clinic};

use super::prescription_id;

/// What the page may do: show itself, styled by its own `<style>`, and nothing else.
const POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'self'";

const STYLE: &str = "
body { font: 12pt/1.4 Georgia, 'Times New Roman', serif; color: #000; margin: 2cm auto;
  max-width: 17cm; }
header { border-bottom: 2px solid #000; padding-bottom: .5em; margin-bottom: 1em; }
h1 { font-size: 18pt; margin: 0; }
h2 { font-size: 14pt; margin: 1.2em 0 .4em; }
dl { display: grid; grid-template-columns: 10em 1fr; gap: .2em 1em; margin: 0; }
dt { font-weight: bold; }
dd { margin: 0; white-space: pre-wrap; }
.status { border: 2px solid #000; padding: .3em .6em; font-weight: bold; display: inline-block;
  text-transform: uppercase; }
.override { border-left: 4px solid #000; padding-left: .6em; }
footer { margin-top: 3em; display: flex; justify-content: space-between; }
.signature { border-top: 1px solid #000; width: 18em; padding-top: .3em; }
@page { size: A4; margin: 1.5cm; }
@media print { body { margin: 0; max-width: none; } }
";

/// The page of one prescription.
fn page(clinic: &Clinic, view: &PrescriptionView) -> Markup {
    let p = &view.prescription;
    let date = |at: jiff::Timestamp| at.to_zoned(clinic.time_zone.clone()).strftime("%-d %B %Y");
    let doctor = view
        .prescribed_by_name
        .as_ref()
        .map_or("(account removed)", |n| n.as_str());
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="robots" content="noindex";
                title { "Prescription — " (clinic.name) }
                style { (maud::PreEscaped(STYLE)) }
            }
            body {
                header {
                    h1 { (clinic.name) }
                    div { "Prescription written " (date(p.created_at)) }
                }
                @if p.status != PrescriptionStatus::Active {
                    p.status { "Not valid: " (p.status.as_str()) }
                }
                h2 { "Patient" }
                dl {
                    dt { "Name" } dd { (view.patient.full_name.as_str()) }
                    dt { "Date of birth" } dd { (view.patient.date_of_birth) }
                    dt { "Record number" } dd { (view.patient.mrn.as_str()) }
                }
                h2 { "Prescribed" }
                dl {
                    dt { "Medication" } dd { (p.medication.as_str()) }
                    dt { "Dose" } dd { (p.dose.as_str()) }
                    dt { "Route" } dd { (p.route.as_str()) }
                    dt { "Frequency" } dd { (p.frequency.as_str()) }
                    dt { "Duration" }
                    dd {
                        @match p.duration_days {
                            Some(1) => { "1 day" }
                            Some(days) => { (days) " days" }
                            None => { "Until stopped" }
                        }
                    }
                    @if let Some(quantity) = p.quantity {
                        dt { "Quantity" } dd { (quantity) }
                    }
                    dt { "Refills" } dd { (p.refills) }
                    dt { "Instructions" } dd { (p.instructions.as_str()) }
                }
                @if let Some(allergy) = &p.allergy_override {
                    h2 { "Allergy override" }
                    div.override {
                        p {
                            "Prescribed despite recorded allergies to: "
                            @for (i, m) in allergy.matches.iter().enumerate() {
                                @if i > 0 { ", " }
                                (m.substance)
                            }
                            "."
                        }
                        p { "Reason: " (allergy.reason.as_str()) }
                    }
                }
                footer {
                    div {
                        div { "Prescribed by " strong { (doctor) } }
                        div { "Reference " (p.id) }
                    }
                    div.signature { "Signature" }
                }
            }
        }
    }
}

/// One prescription as an HTML page to print, for those who may read it; the read is audited.
#[utoipa::path(
    tag = "prescriptions",
    params(("id" = Uuid, Path, description = "The prescription's id")),
    responses(
        (status = 200, description = "The page, to print", content_type = "text/html", body = String),
        Unauthenticated,
        (status = 403, description = "Secretaries, the laboratory and administrators see no prescriptions", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such prescription, or not one the caller may see", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[get("/prescriptions/{id}/print")]
pub async fn print_prescription(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state
        .prescriptions
        .check_role(
            &actor,
            Action::ReadPrescriptions,
            AuditAction::PrescriptionRead,
        )
        .await?;
    let view = state
        .prescriptions
        .get(&actor, prescription_id(&path)?)
        .await?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::CONTENT_SECURITY_POLICY, POLICY))
        .body(page(&state.clinic, &view).into_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    use carehub_domain::identity::{FullName, UserId};
    use carehub_domain::kernel::{PatientId, Text};
    use carehub_domain::patients::{Mrn, PatientSummary, Sex};
    use carehub_domain::prescriptions::{NewPrescription, Prescription, Route};

    fn text(raw: &str) -> Text {
        Text::multiline(raw, 2_000).expect("text")
    }

    #[test]
    fn the_page_escapes_what_it_prints_and_says_when_it_is_no_longer_valid() {
        let patient_id = PatientId::generate();
        let by = UserId::generate();
        let mut prescription = Prescription::write(
            NewPrescription {
                patient_id,
                medication: text("<script>alert(1)</script>"),
                dose: text("5 mg"),
                route: Route::Oral,
                frequency: text("daily"),
                duration_days: Some(1),
                quantity: None,
                refills: 0,
                instructions: text("A & B"),
                override_reason: None,
                replaces: None,
            },
            by,
            &[],
            "2026-12-06T09:00:00Z".parse().expect("instant"),
        )
        .expect("written");
        let clinic = Clinic {
            name: "St. <Anne>'s".to_owned(),
            time_zone: jiff::tz::TimeZone::UTC,
        };
        let view = |prescription: Prescription| PrescriptionView {
            prescription,
            patient: PatientSummary {
                id: patient_id,
                mrn: Mrn::from_number(48_217_730),
                full_name: FullName::parse("Ada Lovelace").expect("name"),
                date_of_birth: jiff::civil::date(1985, 12, 10),
                sex: Sex::Female,
            },
            prescribed_by_name: Some(FullName::parse("Gregory House").expect("name")),
        };
        let html = page(&clinic, &view(prescription.clone())).into_string();
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("St. &lt;Anne&gt;'s"), "{html}");
        assert!(html.contains("A &amp; B"), "{html}");
        assert!(html.contains("6 December 2026"), "{html}");
        assert!(html.contains("Gregory House") && html.contains("Ada Lovelace"));
        assert!(html.contains("1985-12-10") && html.contains("1 day"));
        assert!(!html.contains("Not valid"), "{html}");

        prescription
            .complete(by, jiff::Timestamp::now())
            .expect("completed");
        let html = page(&clinic, &view(prescription)).into_string();
        assert!(html.contains("Not valid: completed"), "{html}");
    }
}
