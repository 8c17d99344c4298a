DROP TRIGGER alerts_written ON alerts;
DROP FUNCTION manifold_notify_alerts();
DROP TABLE alert_versions;
DROP TABLE alert_events;
DROP TABLE alerts;
