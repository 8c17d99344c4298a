-- The hours a chunk of readings touched, for the continuous aggregate's refresh (TimescaleDB).
INSERT INTO readings_refresh (hour) SELECT unnest($1::timestamptz[])
