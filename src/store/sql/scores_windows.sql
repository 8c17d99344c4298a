-- Scored windows of a system, newest first: windows starting in [$2, $3) and before the
-- cursor $4, one page ($5); the latest revision of each, optionally one component ($6).
WITH w AS (
    SELECT DISTINCT window_start FROM anomaly_scores
    WHERE system_id = $1 AND window_start >= $2 AND window_start < $3 AND window_start < $4
      AND ($6::text IS NULL OR component_id = $6)
    ORDER BY window_start DESC
    LIMIT $5
)
SELECT DISTINCT ON (a.window_start, a.component_id)
       a.window_start, a.window_end, a.revision, a.model_version, a.component_id, a.score, a.class,
       a.class_probs, a.features, a.computed_at, a.drivers
FROM anomaly_scores a JOIN w ON w.window_start = a.window_start
WHERE a.system_id = $1 AND ($6::text IS NULL OR a.component_id = $6)
ORDER BY a.window_start DESC, a.component_id, a.revision DESC
