-- Which notification kinds a user also wants by e-mail, at the account's address
-- (users.email). Storing a notification of a chosen kind enqueues its e-mail job in the same
-- transaction.

CREATE TABLE notification_email_kinds (
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind    TEXT NOT NULL,
    PRIMARY KEY (user_id, kind)
) STRICT;
