DROP TABLE alert_versions;
DROP TABLE alert_events;
DROP TABLE alerts;
