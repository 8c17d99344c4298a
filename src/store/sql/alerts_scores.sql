-- The latest revision of each component's score in each window of a system from $2 on, in
-- window order: what alerts are derived from.
SELECT DISTINCT ON (component_id, window_start)
       component_id, window_start, window_end, model_version, class, score
FROM anomaly_scores
WHERE system_id = $1 AND window_start >= $2
ORDER BY component_id, window_start, revision DESC
