-- An appointment may be a video consultation, whose doctor and patient meet in its call.
ALTER TABLE appointments ADD COLUMN video BOOLEAN NOT NULL DEFAULT false;
