ALTER TABLE anomaly_scores DROP COLUMN drivers;
