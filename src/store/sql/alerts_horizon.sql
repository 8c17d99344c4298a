-- Where a system's alert derivation starts: $2 (the oldest caused window minus the lookback),
-- or earlier, at the opening of any alert not yet over by then, so that no alert is cut in two.
SELECT LEAST($2::timestamptz, min(opened_window_start))
FROM alerts
WHERE system_id = $1 AND status <> 'withdrawn' AND (cleared_window_start IS NULL OR cleared_window_start >= $2)
