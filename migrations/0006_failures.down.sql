DROP TABLE scoring_failures;
DROP TABLE outbox_failures;
DROP INDEX dead_letters_source;

-- windows
DROP VIEW windows_due;
