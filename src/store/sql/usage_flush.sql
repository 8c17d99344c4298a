-- Adds counters aggregated in memory since the last flush.
INSERT INTO usage_daily AS u (user_id, day, requests, readings)
SELECT * FROM unnest($1::uuid[], $2::date[], $3::int8[], $4::int8[])
ON CONFLICT (user_id, day) DO UPDATE
    SET requests = u.requests + excluded.requests, readings = u.readings + excluded.readings
