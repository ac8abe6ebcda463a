-- A new notification kind: prescription.created, to the patient's account.
ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check CHECK (kind IN (
    'referral.received', 'referral.accepted', 'referral.declined', 'referral.completed',
    'referral.cancelled', 'care_team.added', 'emergency_access.used', 'appointment.booked',
    'appointment.cancelled', 'appointment.rescheduled', 'appointment.reminder',
    'referral.escalated', 'lab.resulted', 'lab.critical', 'lab.critical_escalated',
    'lab.released', 'lab.ecg_alert', 'prescription.created'));
