DROP TABLE alert_cursors;
