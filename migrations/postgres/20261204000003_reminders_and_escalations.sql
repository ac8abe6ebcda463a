-- Reminders and escalations.
--
-- Notifications a job stores once, however often it runs (a reminder, an escalation): the
-- key is written in the notifications' own transaction, and a second run finds it and stores
-- nothing.

CREATE TABLE notification_once (
    key        TEXT        NOT NULL PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL
);

-- New notification kinds: appointment reminders and referral escalations.
ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check CHECK (kind IN (
    'referral.received', 'referral.accepted', 'referral.declined', 'referral.completed',
    'referral.cancelled', 'care_team.added', 'emergency_access.used', 'appointment.booked',
    'appointment.cancelled', 'appointment.rescheduled', 'appointment.reminder',
    'referral.escalated'));
