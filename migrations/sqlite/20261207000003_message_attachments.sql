-- Files that go with messages: uploaded to a conversation first (unsent: no message), then
-- sent with one message, in the order given. Their bytes are in the file store, under
-- messages/{conversation}/{id}; the name is a label, never a path. Unsent uploads are deleted
-- after a day.
CREATE TABLE message_attachments (
    id              BLOB    NOT NULL PRIMARY KEY,
    conversation_id BLOB    NOT NULL REFERENCES conversations (id),
    message_id      BLOB    REFERENCES messages (id),
    position        INTEGER,
    name            TEXT    NOT NULL,
    content_type    TEXT    NOT NULL
        CHECK (content_type IN ('application/pdf', 'image/png', 'image/jpeg')),
    size            INTEGER NOT NULL CHECK (size >= 0),
    sha256          TEXT    NOT NULL,
    uploaded_by     BLOB    NOT NULL REFERENCES users (id),
    uploaded_at     INTEGER NOT NULL,
    CHECK ((message_id IS NULL) = (position IS NULL))
) STRICT;

CREATE INDEX message_attachments_message_idx ON message_attachments (message_id, position);
CREATE INDEX message_attachments_unsent_idx ON message_attachments (uploaded_at)
    WHERE message_id IS NULL;
