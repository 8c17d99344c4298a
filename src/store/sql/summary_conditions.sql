-- Per component and class: seconds of scored windows (latest revision) starting in [$2, $3).
WITH latest AS (
    SELECT DISTINCT ON (component_id, window_start) component_id, window_start, window_end, class
    FROM anomaly_scores
    WHERE system_id = $1 AND window_start >= $2 AND window_start < $3
    ORDER BY component_id, window_start, revision DESC
)
SELECT component_id, class, sum(extract(epoch FROM window_end - window_start))::float8
FROM latest
GROUP BY component_id, class
