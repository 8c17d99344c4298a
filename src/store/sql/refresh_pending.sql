-- Hours ingest touched that have begun by $1, oldest first; bounded so one pass stays short.
SELECT id, hour FROM readings_refresh WHERE hour < $1 ORDER BY hour, id LIMIT 100000
