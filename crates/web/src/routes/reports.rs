//! The clinic's reports, for administrators: figures over whole days of the clinic's calendar,
//! as JSON or, when the client asks for `text/csv`, as CSV with one row per figure. They name
//! doctors, never a patient.

use actix_web::http::header::{self, Accept, Header as _, Quality};
use actix_web::{HttpRequest, HttpResponse, get, mime, web};
use jiff::Zoned;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use carehub_domain::kernel::{format_date, parse_date};
use carehub_domain::referrals::ReferralStatus;
use carehub_domain::reports::{AcceptanceTimes, ClinicReport, NotificationFigures, StatusCount};
use carehub_domain::scheduling::{AppointmentStatus, clinic_time};

use crate::extract::{Caller, parse_query};
use crate::openapi::enums;
use crate::problem::{AdminOnly, ApiError, Problem, Unauthenticated};
use crate::routes::scheduling::views::zone_name;
use crate::state::AppState;
use utoipa_actix_web::service_config::ServiceConfig;

/// The content type of the CSV form.
const TEXT_CSV: &str = "text/csv; charset=utf-8";

/// Registers the reports.
pub fn services(cfg: &mut ServiceConfig) {
    cfg.service(report_summary);
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// The first day of the period, `YYYY-MM-DD`, in the clinic's time zone.
    #[param(format = Date, example = "2027-03-01")]
    pub from: String,
    /// The day after the last day of the period (excluded), `YYYY-MM-DD`: after `from`, and
    /// at most 366 days after it.
    #[param(format = Date, example = "2027-04-01")]
    pub to: String,
}

fn date(name: &str, raw: &str) -> Result<Date, ApiError> {
    parse_date(raw).map_err(|e| ApiError::BadRequest(format!("{name}: {e}")))
}

/// The clinic's activity over whole days, as JSON or CSV.
///
/// Patients registered, appointments by status and the no-show rate, each active doctor's
/// booked share of their available time, referrals by status with the times they took to be
/// accepted, and what became of notifications; no patient is named. The period runs from the
/// start of `from` to the start of `to`, in the clinic's time zone. Sent as CSV
/// (`section,name,value`, one row per figure) when `Accept` prefers `text/csv` to JSON.
#[utoipa::path(
    tag = "admin",
    params(ReportQuery),
    responses(
        (status = 200, description = "The report", content(
            (ReportView = "application/json"),
            (String = "text/csv", example = "section,name,value\nperiod,from,2027-03-01\npatients,registered,12\n"),
        )),
        (status = 400, description = "A missing or invalid date, `to` not after `from`, or more than 366 days after it", body = Problem, content_type = "application/problem+json"),
        Unauthenticated,
        AdminOnly,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[get("/admin/reports/summary")]
pub async fn report_summary(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    state.reports.check(&actor)?;
    let query: ReportQuery = parse_query(&request)?;
    let from = date("from", &query.from)?;
    let to = date("to", &query.to)?;
    let period = state.reports.period(from, to)?;
    let report = state.reports.summary(&actor, &period).await?;
    let view = ReportView::of(
        &report,
        &zone_name(state.reports.clinic_time_zone()),
        |at| clinic_time(state.reports.clinic_time_zone(), at),
    );
    if prefers_csv(&request) {
        let body = view.to_csv().map_err(ApiError::internal)?;
        Ok(HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, TEXT_CSV))
            .body(body))
    } else {
        Ok(HttpResponse::Ok().json(view))
    }
}

/// Whether the most preferred type of `Accept` that this route can answer is `text/csv`
/// (JSON otherwise, and when there is no `Accept`).
fn prefers_csv(request: &HttpRequest) -> bool {
    let Ok(Accept(mut items)) = Accept::parse(request) else {
        return false;
    };
    // Stable: of equal preference, the first listed wins.
    items.sort_by_key(|item| std::cmp::Reverse(item.quality));
    items
        .iter()
        .filter(|item| item.quality > Quality::ZERO)
        .find_map(|item| {
            let (kind, subtype) = (item.item.type_(), item.item.subtype());
            if kind == mime::TEXT && subtype == "csv" {
                Some(true)
            } else if kind == mime::STAR
                || (kind == mime::APPLICATION && (subtype == mime::JSON || subtype == mime::STAR))
            {
                Some(false)
            } else {
                None
            }
        })
        .unwrap_or(false)
}

/// The period a report covers.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportPeriodView {
    /// The first day.
    pub from: Date,
    /// The day after the last day.
    pub to: Date,
    /// The clinic's time zone, in which the days are read (an IANA name).
    #[schema(example = "Europe/Paris")]
    pub time_zone: String,
    /// The start of `from`, at the clinic's offset.
    #[schema(example = "2027-03-01T00:00:00+01:00")]
    #[serde(serialize_with = "crate::clinic_time::serialize")]
    pub start: Zoned,
    /// The start of `to`, at the clinic's offset: the first instant after the period.
    #[schema(example = "2027-04-01T00:00:00+02:00")]
    #[serde(serialize_with = "crate::clinic_time::serialize")]
    pub end: Zoned,
}

/// Patients registered in the period.
#[derive(Debug, Serialize, ToSchema)]
pub struct PatientFiguresView {
    pub registered: u64,
}

/// How many appointments starting in the period are in one status.
#[derive(Debug, Serialize, ToSchema)]
pub struct AppointmentStatusCountView {
    #[schema(value_type = enums::AppointmentStatus)]
    pub status: AppointmentStatus,
    pub count: u64,
}

/// Appointments starting in the period.
#[derive(Debug, Serialize, ToSchema)]
pub struct AppointmentFiguresView {
    /// Every status, 0 where none.
    pub by_status: Vec<AppointmentStatusCountView>,
    /// `no_show / (completed + no_show)`; `null` when there were neither.
    #[schema(example = 0.125)]
    pub no_show_rate: Option<f64>,
}

/// An active doctor's booked share of their available time in the period.
#[derive(Debug, Serialize, ToSchema)]
pub struct DoctorUtilizationView {
    /// The doctor's account id.
    pub id: Uuid,
    #[schema(example = "Dr Alice Adams")]
    pub full_name: String,
    /// The time of their booked, checked-in, in-progress, completed and no-show appointments
    /// inside the period, in whole minutes (rounded down).
    pub booked_minutes: i64,
    /// Their weekly availability over the period, in the clinic's time zone, minus their time
    /// off, in whole minutes (rounded down).
    pub available_minutes: i64,
    /// Booked over available time (of the exact times); `null` when nothing was available.
    /// Above 1 when appointments were kept after the doctor's hours shrank.
    #[schema(example = 0.75)]
    pub booked_share: Option<f64>,
}

/// How many referrals sent in the period are in one status.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReferralStatusCountView {
    #[schema(value_type = enums::ReferralStatus)]
    pub status: ReferralStatus,
    pub count: u64,
}

/// How long referrals sent in the period waited to be accepted.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimeToAcceptView {
    /// The referrals measured: those sent in the period and accepted since (completed ones
    /// included).
    pub accepted: u64,
    /// The median wait, in seconds, interpolated as `percentile_cont` does; `null` when none
    /// was accepted.
    #[schema(example = 5400.0)]
    pub median_seconds: Option<f64>,
    /// The 90th percentile wait, in seconds; `null` when none was accepted.
    #[schema(example = 86400.0)]
    pub p90_seconds: Option<f64>,
}

/// Referrals sent in the period.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReferralFiguresView {
    /// Every status, 0 where none.
    pub by_status: Vec<ReferralStatusCountView>,
    pub time_to_accept: TimeToAcceptView,
}

/// Notifications stored in the period, and their e-mails.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationFiguresView {
    /// Notifications stored in the period.
    pub stored: u64,
    /// Of those, the ones read.
    pub read: u64,
    /// Notification e-mails whose jobs were added in the period and succeeded.
    pub emailed: u64,
    /// Notification e-mails whose jobs were added in the period and failed (to be retried) or
    /// are dead.
    pub email_failures: u64,
}

/// The clinic's activity over a period. It names doctors, never a patient.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportView {
    pub period: ReportPeriodView,
    pub patients: PatientFiguresView,
    pub appointments: AppointmentFiguresView,
    /// Every active doctor, by id.
    pub doctors: Vec<DoctorUtilizationView>,
    pub referrals: ReferralFiguresView,
    pub notifications: NotificationFiguresView,
}

impl ReportView {
    /// The report, its period's instants shown by `shown` (at the clinic's offset) in the zone
    /// named `time_zone`.
    pub fn of(
        report: &ClinicReport,
        time_zone: &str,
        shown: impl Fn(jiff::Timestamp) -> Zoned,
    ) -> Self {
        let period = &report.period;
        let appointments = |c: &StatusCount<AppointmentStatus>| AppointmentStatusCountView {
            status: c.status,
            count: c.count,
        };
        let referrals = |c: &StatusCount<ReferralStatus>| ReferralStatusCountView {
            status: c.status,
            count: c.count,
        };
        let AcceptanceTimes {
            accepted,
            median_secs,
            p90_secs,
        } = report.referrals.time_to_accept;
        let NotificationFigures {
            stored,
            read,
            emailed,
            email_failures,
        } = report.notifications;
        Self {
            period: ReportPeriodView {
                from: period.from(),
                to: period.to(),
                time_zone: time_zone.to_owned(),
                start: shown(period.start()),
                end: shown(period.end()),
            },
            patients: PatientFiguresView {
                registered: report.patients_registered,
            },
            appointments: AppointmentFiguresView {
                by_status: report
                    .appointments
                    .by_status
                    .iter()
                    .map(appointments)
                    .collect(),
                no_show_rate: report.appointments.no_show_rate,
            },
            doctors: report
                .doctors
                .iter()
                .map(|d| DoctorUtilizationView {
                    id: *d.doctor_id.as_uuid(),
                    full_name: d.full_name.as_str().to_owned(),
                    booked_minutes: d.booked_minutes(),
                    available_minutes: d.available_minutes(),
                    booked_share: d.booked_share,
                })
                .collect(),
            referrals: ReferralFiguresView {
                by_status: report.referrals.by_status.iter().map(referrals).collect(),
                time_to_accept: TimeToAcceptView {
                    accepted,
                    median_seconds: median_secs,
                    p90_seconds: p90_secs,
                },
            },
            notifications: NotificationFiguresView {
                stored,
                read,
                emailed,
                email_failures,
            },
        }
    }

    /// The report as CSV: a header `section,name,value`, then one row per figure, in the order
    /// of the JSON form. A figure that is `null` in JSON is empty. Each doctor's rows are in
    /// section `doctor:<id>`.
    ///
    /// # Errors
    /// The CSV writer's, which writes to memory and does not fail on these rows.
    pub fn to_csv(&self) -> Result<Vec<u8>, csv::Error> {
        let mut rows: Vec<(String, String, String)> = Vec::new();
        let mut row = |section: &str, name: &str, value: String| {
            rows.push((section.to_owned(), name.to_owned(), value));
        };
        let p = &self.period;
        row("period", "from", format_date(p.from));
        row("period", "to", format_date(p.to));
        row("period", "time_zone", p.time_zone.clone());
        row("period", "start", shown_instant(&p.start));
        row("period", "end", shown_instant(&p.end));
        row(
            "patients",
            "registered",
            self.patients.registered.to_string(),
        );
        for c in &self.appointments.by_status {
            row("appointments", c.status.as_str(), c.count.to_string());
        }
        row(
            "appointments",
            "no_show_rate",
            number(self.appointments.no_show_rate),
        );
        for d in &self.doctors {
            let section = format!("doctor:{}", d.id);
            row(&section, "full_name", inert(&d.full_name));
            row(&section, "booked_minutes", d.booked_minutes.to_string());
            row(
                &section,
                "available_minutes",
                d.available_minutes.to_string(),
            );
            row(&section, "booked_share", number(d.booked_share));
        }
        for c in &self.referrals.by_status {
            row("referrals", c.status.as_str(), c.count.to_string());
        }
        let t = &self.referrals.time_to_accept;
        row("referrals", "accepted_measured", t.accepted.to_string());
        row(
            "referrals",
            "median_seconds_to_accept",
            number(t.median_seconds),
        );
        row("referrals", "p90_seconds_to_accept", number(t.p90_seconds));
        let n = &self.notifications;
        row("notifications", "stored", n.stored.to_string());
        row("notifications", "read", n.read.to_string());
        row("notifications", "emailed", n.emailed.to_string());
        row(
            "notifications",
            "email_failures",
            n.email_failures.to_string(),
        );

        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record(["section", "name", "value"])?;
        for (section, name, value) in rows {
            writer.write_record([section, name, value])?;
        }
        writer.into_inner().map_err(|e| e.into_error().into())
    }
}

/// A figure that may be missing, as CSV writes it: empty when missing.
fn number(value: Option<f64>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

/// An instant as the JSON form writes it.
fn shown_instant(at: &Zoned) -> String {
    let mut out = serde_json::Serializer::new(Vec::new());
    match crate::clinic_time::serialize(at, &mut out) {
        Ok(()) => String::from_utf8(out.into_inner())
            .map(|json| json.trim_matches('"').to_owned())
            .unwrap_or_default(),
        Err(_) => at.timestamp().to_string(),
    }
}

/// Text a spreadsheet would not run as a formula: one starting with `=`, `+`, `-`, `@`, a tab
/// or a carriage return is prefixed with `'` (OWASP's advice on CSV injection). Names are
/// written by people; figures never start so.
fn inert(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use carehub_domain::identity::{FullName, UserId};
    use carehub_domain::reports::{
        AppointmentFigures, DoctorUtilization, ReferralFigures, ReportPeriod, every_status,
    };
    use jiff::SignedDuration;
    use jiff::tz::TimeZone;

    fn report() -> (ClinicReport, TimeZone) {
        let paris = TimeZone::get("Europe/Paris").expect("bundled");
        let period = ReportPeriod::new(
            "2027-03-01".parse().expect("a date"),
            "2027-04-01".parse().expect("a date"),
            &paris,
        )
        .expect("a period");
        let report = ClinicReport {
            period,
            patients_registered: 12,
            appointments: AppointmentFigures {
                by_status: every_status(
                    AppointmentStatus::ALL,
                    &[StatusCount {
                        status: AppointmentStatus::Completed,
                        count: 7,
                    }],
                ),
                no_show_rate: Some(0.0),
            },
            doctors: vec![DoctorUtilization {
                doctor_id: UserId::generate(),
                full_name: FullName::parse("=HYPERLINK(\"x\"), \"Dr\" Evil").expect("a name"),
                booked: SignedDuration::from_mins(90),
                available: SignedDuration::from_mins(360),
                booked_share: Some(0.25),
            }],
            referrals: ReferralFigures {
                by_status: every_status(ReferralStatus::ALL, &[]),
                time_to_accept: AcceptanceTimes::default(),
            },
            notifications: NotificationFigures {
                stored: 3,
                read: 1,
                emailed: 2,
                email_failures: 0,
            },
        };
        (report, paris)
    }

    fn view() -> ReportView {
        let (report, paris) = report();
        ReportView::of(&report, "Europe/Paris", |at| clinic_time(&paris, at))
    }

    #[test]
    fn the_json_form_lists_every_status_and_writes_missing_figures_as_null() {
        let json = serde_json::to_value(view()).expect("JSON");
        assert_eq!(json["period"]["from"], "2027-03-01");
        assert_eq!(json["period"]["start"], "2027-03-01T00:00:00+01:00");
        assert_eq!(json["period"]["end"], "2027-04-01T00:00:00+02:00");
        assert_eq!(json["appointments"]["by_status"][3]["status"], "completed");
        assert_eq!(json["appointments"]["by_status"][3]["count"], 7);
        assert_eq!(
            json["appointments"]["by_status"].as_array().map(Vec::len),
            Some(6)
        );
        assert_eq!(json["doctors"][0]["booked_minutes"], 90);
        assert_eq!(json["doctors"][0]["booked_share"], 0.25);
        assert_eq!(
            json["referrals"]["time_to_accept"]["median_seconds"],
            serde_json::Value::Null
        );
        assert_eq!(json["notifications"]["emailed"], 2);
    }

    #[test]
    fn the_csv_form_has_one_quoted_row_per_figure_and_no_formulas() {
        let csv = String::from_utf8(view().to_csv().expect("CSV")).expect("UTF-8");
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "section,name,value");
        assert!(
            lines.contains(&"period,start,2027-03-01T00:00:00+01:00"),
            "{csv}"
        );
        assert!(lines.contains(&"appointments,completed,7"), "{csv}");
        assert!(lines.contains(&"appointments,no_show_rate,0"), "{csv}");
        assert!(
            lines.contains(&"referrals,median_seconds_to_accept,"),
            "{csv}"
        );
        let name = lines
            .iter()
            .find(|l| l.contains(",full_name,"))
            .expect("a doctor's name");
        assert!(
            name.ends_with(",full_name,\"'=HYPERLINK(\"\"x\"\"), \"\"Dr\"\" Evil\""),
            "{name}"
        );
        // 5 period, 1 patients, 7 appointments, 4 doctor, 8 referrals, 4 notifications.
        assert_eq!(lines.len(), 1 + 5 + 1 + 7 + 4 + 8 + 4);
    }

    #[test]
    fn csv_is_sent_only_when_preferred_to_json() {
        let with = |accept: Option<&str>| {
            let mut request = actix_web::test::TestRequest::default();
            if let Some(accept) = accept {
                request = request.insert_header((header::ACCEPT, accept));
            }
            prefers_csv(&request.to_http_request())
        };
        assert!(!with(None));
        assert!(with(Some("text/csv")));
        assert!(with(Some("text/html, text/csv;q=0.5")));
        assert!(!with(Some("application/json, text/csv")));
        assert!(with(Some("application/json;q=0.4, text/csv;q=0.9")));
        assert!(!with(Some("*/*")));
        assert!(!with(Some("text/csv;q=0")));
        assert!(!with(Some("not a media type")));
    }
}
