-- The APIs an account may get tokens for (the twin is
-- migrations/sqlite/0007_allowed_resources.sql): audience URIs separated by
-- spaces (an audience holds none), '' for every API.
ALTER TABLE service_accounts ADD COLUMN allowed_resources TEXT NOT NULL DEFAULT '';
