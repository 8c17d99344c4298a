-- The newest scored window of one system, one line per component, most anomalous first: its
-- class with the name and severity the model's manifest gives it (`-` when the scorer has no
-- classes or the manifest is of another model version). Names are not stored with the scores;
-- they are read from the manifest, as the API does. psql variables: system, manifest (the text
-- of the manifest.json).
WITH names AS (
    SELECT :'manifest'::jsonb ->> 'version' AS model_version, t ->> 'component' AS component_id,
           c ->> 'class' AS class, c ->> 'name' AS name, c ->> 'severity' AS severity
    FROM jsonb_array_elements(:'manifest'::jsonb -> 'targets') AS t,
         jsonb_array_elements(coalesce(t -> 'conditions', '[]'::jsonb)) AS c
)
SELECT to_char(s.window_start AT TIME ZONE 'UTC', 'HH24:MI'), 'rev' || s.revision, rpad(s.component_id, 12),
       to_char(s.score, '0.00'), rpad(coalesce(s.class, '-'), 4),
       rpad(coalesce(n.name || ' (' || n.severity || ')', '-'), 36), s.model_version
FROM anomaly_scores s
LEFT JOIN names n USING (model_version, component_id, class)
WHERE s.system_id = :'system'
  AND (s.window_start, s.revision) = (SELECT window_start, revision FROM anomaly_scores WHERE system_id = :'system'
                                      ORDER BY computed_at DESC LIMIT 1)
ORDER BY s.score DESC, s.component_id;
