DROP TABLE scoring_failures;
DROP TABLE outbox_failures;
DROP INDEX dead_letters_source;

-- windows
DROP VIEW windows_due;

-- relay (gone with its table already; kept for symmetry with the up file)
DROP INDEX IF EXISTS outbox_failures_time;
