-- Which sensors drove each score (issue 13, item 4): the scorer's strongest drivers of the
-- component's score, strongest first, as a JSON array of {"sensor_id", "effect"} (empty: none
-- drove it). NULL when
-- the scorer does not say (scores written before this column, a service without drivers).
-- Nullable with no default: adding it rewrites no row.
ALTER TABLE anomaly_scores ADD COLUMN drivers jsonb;
