DROP VIEW IF EXISTS grafana_dead_letters;
DROP VIEW IF EXISTS grafana_scores;
DROP VIEW IF EXISTS grafana_readings;
DROP VIEW IF EXISTS grafana_sensor_1m;
DROP VIEW IF EXISTS grafana_series;
