-- The 1-minute aggregate, merged with what earlier chunks already counted.
-- Sums saturate at ±float8 max instead of failing with 22003 (which would stall ingest on
-- one chunk forever). Validation keeps |value| ≤ 1e9, so n × 1e9 ≤ 9.2e27 (n is int8) and the
-- saturating branch is only a backstop for values accepted before that bound existed.
INSERT INTO readings_1m AS m (series_id, bucket, n, sum, min, max)
SELECT * FROM unnest($1::int[], $2::timestamptz[], $3::int8[], $4::float8[], $5::float8[], $6::float8[])
ON CONFLICT (series_id, bucket) DO UPDATE SET
    n = m.n + excluded.n,
    sum = CASE
        WHEN sign(m.sum) = sign(excluded.sum)
             AND abs(m.sum) > '1.7976931348623157e308'::float8 - abs(excluded.sum)
            THEN sign(m.sum) * '1.7976931348623157e308'::float8
        ELSE m.sum + excluded.sum
    END,
    min = least(m.min, excluded.min),
    max = greatest(m.max, excluded.max)
