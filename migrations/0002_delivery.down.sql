DROP TABLE IF EXISTS anomaly_scores;
DROP TABLE IF EXISTS system_watermarks;
DROP TABLE IF EXISTS windows;
DROP TABLE IF EXISTS outbox;
DROP TABLE IF EXISTS dead_letters;
DROP TABLE IF EXISTS ingested_batches;
DROP TABLE IF EXISTS ingest_offsets;
