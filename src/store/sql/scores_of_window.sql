-- One scored window revision, for the live feed.
SELECT window_start, window_end, revision, model_version, component_id, score, class,
       class_probs, features, computed_at, drivers
FROM anomaly_scores
WHERE system_id = $1 AND window_start = $2 AND revision = $3
ORDER BY component_id
