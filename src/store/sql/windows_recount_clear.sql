-- A topology change ($1 = system) recomputes the slot coverage of the system's open windows:
-- first forget what was counted under the old sampling rates (windows_recount.sql refills it).
DELETE FROM window_slots c USING windows w
WHERE w.system_id = $1 AND w.ready_revision IS NULL AND c.system_id = w.system_id AND c.window_start = w.window_start
