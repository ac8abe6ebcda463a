//! The reports administrators read.

use std::sync::Arc;

use jiff::civil::Date;
use jiff::tz::TimeZone;

use super::{
    AppointmentFigures, ClinicReport, DoctorUtilization, PeriodError, ReferralFigures,
    ReportPeriod, ReportRepository, available_time, booked_share, every_status, no_show_rate,
};
use crate::access::{AccessError, Action, Actor, Relationship};
use crate::kernel::RepositoryError;
use crate::referrals::ReferralStatus;
use crate::scheduling::AppointmentStatus;

/// Why a report was not given.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The caller may not read reports (403).
    #[error(transparent)]
    Access(#[from] AccessError),
    /// The dates do not make a period (400).
    #[error(transparent)]
    Period(#[from] PeriodError),
    #[error(transparent)]
    Internal(#[from] RepositoryError),
}

/// The clinic's reports, for those the policy lets read them (administrators).
#[derive(Clone)]
pub struct ReportService {
    reports: Arc<dyn ReportRepository>,
    time_zone: TimeZone,
}

impl std::fmt::Debug for ReportService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportService").finish_non_exhaustive()
    }
}

impl ReportService {
    /// Reports over days of the clinic's calendar, in `time_zone`, the zone doctors' weekly
    /// rules are read in.
    pub fn new(reports: Arc<dyn ReportRepository>, time_zone: TimeZone) -> Self {
        Self { reports, time_zone }
    }

    /// The clinic's time zone, in which a period's days are read.
    pub fn clinic_time_zone(&self) -> &TimeZone {
        &self.time_zone
    }

    /// Refuses callers who may not read reports, before anything else is read.
    ///
    /// # Errors
    /// [`ReportError::Access`].
    pub fn check(&self, actor: &Actor) -> Result<(), ReportError> {
        actor.permit(Action::ReadReports, Relationship::None)?;
        Ok(())
    }

    /// The days `from` up to (not including) `to`, in the clinic's time zone.
    ///
    /// # Errors
    /// [`ReportError::Period`].
    pub fn period(&self, from: Date, to: Date) -> Result<ReportPeriod, ReportError> {
        Ok(ReportPeriod::new(from, to, &self.time_zone)?)
    }

    /// The clinic's activity over `period`: registrations, appointments, each active
    /// doctor's booked share of their available time, referrals and notifications.
    ///
    /// # Errors
    /// [`ReportError::Access`], [`ReportError::Internal`].
    pub async fn summary(
        &self,
        actor: &Actor,
        period: &ReportPeriod,
    ) -> Result<ClinicReport, ReportError> {
        self.check(actor)?;
        let (start, end) = (period.start(), period.end());
        let activity = self.reports.activity(start, end).await?;
        let doctors = self
            .reports
            .doctor_time(start, end)
            .await?
            .into_iter()
            .map(|doctor| {
                let available =
                    available_time(&doctor.rules, &doctor.time_off, &self.time_zone, start, end);
                DoctorUtilization {
                    booked_share: booked_share(doctor.booked, available),
                    doctor_id: doctor.doctor_id,
                    full_name: doctor.full_name,
                    booked: doctor.booked,
                    available,
                }
            })
            .collect();
        let appointments = every_status(AppointmentStatus::ALL, &activity.appointments);
        Ok(ClinicReport {
            period: period.clone(),
            patients_registered: activity.patients_registered,
            appointments: AppointmentFigures {
                no_show_rate: no_show_rate(&appointments),
                by_status: appointments,
            },
            doctors,
            referrals: ReferralFigures {
                by_status: every_status(ReferralStatus::ALL, &activity.referrals),
                time_to_accept: activity.acceptance,
            },
            notifications: activity.notifications,
        })
    }
}

#[cfg(test)]
mod tests;
