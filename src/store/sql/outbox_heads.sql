-- The newest outbox sequence (for the backlog) and the newest one set aside (the relay's
-- position may move up to it once nothing before it is left to publish). Both use the keys.
SELECT (SELECT coalesce(max(seq), 0) FROM outbox) AS newest,
       (SELECT coalesce(max(seq), 0) FROM outbox_failures) AS newest_failed
