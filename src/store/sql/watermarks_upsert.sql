-- A watermark never moves back (out-of-order data keeps the newest event time seen) and never
-- runs ahead of the database clock: a reading stamped ahead of it counts as now(), so one
-- device clock a day fast cannot make every later window look complete.
INSERT INTO system_watermarks AS m (system_id, max_event_time)
SELECT s, least(t, now()) FROM unnest($1::text[], $2::timestamptz[]) AS e(s, t)
ON CONFLICT (system_id) DO UPDATE SET
    max_event_time = greatest(m.max_event_time, excluded.max_event_time),
    updated_at = now()
