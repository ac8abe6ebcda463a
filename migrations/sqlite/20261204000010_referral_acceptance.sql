-- When a referral was accepted, in INTEGER microseconds since the Unix epoch: set by the change
-- to accepted and kept when the referral is completed. The reports measure the time to accept
-- from created_at to it.
ALTER TABLE referrals ADD COLUMN accepted_at INTEGER;

-- A referral still accepted changed last when it was accepted, so its updated_at is exactly
-- that time. A completed one's acceptance time is not known: it stays NULL, and is left out of
-- the reports' times to accept.
UPDATE referrals SET accepted_at = updated_at WHERE status = 'accepted';
