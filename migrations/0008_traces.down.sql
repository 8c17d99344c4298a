-- A view's columns cannot be dropped in place: it is made again as 0006 made it.
DROP VIEW windows_due;
CREATE VIEW windows_due AS
SELECT system_id, window_start, window_end, reading_count, sensors, revision, ready_revision, last_reading_at
FROM windows
WHERE window_end <= now();
ALTER TABLE windows DROP COLUMN trace_links;
