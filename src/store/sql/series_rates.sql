-- The sampling rate of each series a chunk writes, read in the chunk's transaction so slot
-- coverage uses the topology as stored now (a topology change recounts open windows).
SELECT series_id, sample_rate_hz FROM series WHERE series_id = ANY($1) AND sample_rate_hz IS NOT NULL
