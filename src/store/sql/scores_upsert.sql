-- Idempotent on (system, component, window, revision): a window scored again after a crash
-- overwrites its own row, never adds one.
INSERT INTO anomaly_scores AS a (system_id, component_id, window_start, window_end, revision, model_version,
                                 score, class, class_probs, features, computed_at, drivers)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::int4[], $6::text[],
                     $7::float4[], $8::text[], $9::jsonb[], $10::jsonb[], $11::timestamptz[], $12::jsonb[])
ON CONFLICT (system_id, component_id, window_start, revision) DO UPDATE SET
    window_end = excluded.window_end, model_version = excluded.model_version, score = excluded.score,
    class = excluded.class, class_probs = excluded.class_probs, features = excluded.features,
    computed_at = excluded.computed_at, drivers = excluded.drivers
