-- An appointment may be a video consultation, whose doctor and patient meet in its call.
ALTER TABLE appointments ADD COLUMN video INTEGER NOT NULL DEFAULT 0 CHECK (video IN (0, 1));
