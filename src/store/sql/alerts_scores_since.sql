-- The latest revision of each component's score in each window, for several systems at once,
-- each from its own start: system $1[i] from $2[i] on, in window order. What alerts are derived from.
SELECT w.system_id, s.component_id, s.window_start, s.window_end, s.model_version, s.class, s.score
FROM unnest($1::text[], $2::timestamptz[]) AS w(system_id, since)
CROSS JOIN LATERAL (
    SELECT DISTINCT ON (component_id, window_start) component_id, window_start, window_end, model_version, class, score
    FROM anomaly_scores
    WHERE system_id = w.system_id AND window_start >= w.since
    ORDER BY component_id, window_start, revision DESC
) s
ORDER BY w.system_id, s.component_id, s.window_start
