-- Per component and level: seconds its alerts were open within [$2, $3) (an open alert up to
-- now), alerts opened in the range, and the total seconds and count of their acks (from the opening event;
-- an ack whose opening event retention removed counts in neither, so the mean stays true).
SELECT a.component_id, a.level,
       sum(greatest(0, extract(epoch FROM least(coalesce(a.cleared_window_start, now()), $3) - greatest(a.opened_window_start, $2))))::float8,
       count(*) FILTER (WHERE a.opened_window_start >= $2)::int8,
       sum(extract(epoch FROM a.acked_at - o.created_at)) FILTER (WHERE a.opened_window_start >= $2 AND a.acked_at IS NOT NULL AND o.created_at IS NOT NULL)::float8,
       count(*) FILTER (WHERE a.opened_window_start >= $2 AND a.acked_at IS NOT NULL AND o.created_at IS NOT NULL)::int8
FROM alerts a
LEFT JOIN LATERAL (
    SELECT min(created_at) AS created_at FROM alert_events e WHERE e.alert_id = a.alert_id AND e.kind = 'opened'
) o ON true
WHERE a.system_id = $1 AND a.status <> 'withdrawn' AND a.opened_window_start < $3
  AND coalesce(a.cleared_window_start, 'infinity') > $2
GROUP BY a.component_id, a.level
