-- The installed version and the license of the loaded library (NULL when it is not loaded).
SELECT (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb') AS version,
       current_setting('timescaledb.license', true) AS license
