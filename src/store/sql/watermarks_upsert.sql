-- A watermark never moves back: out-of-order data keeps the newest event time seen.
INSERT INTO system_watermarks AS m (system_id, max_event_time)
SELECT * FROM unnest($1::text[], $2::timestamptz[])
ON CONFLICT (system_id) DO UPDATE SET
    max_event_time = greatest(m.max_event_time, excluded.max_event_time),
    updated_at = now()
