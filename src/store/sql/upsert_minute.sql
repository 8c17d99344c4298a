-- The 1-minute aggregate, merged with what earlier chunks already counted.
INSERT INTO readings_1m AS m (series_id, bucket, n, sum, min, max)
SELECT * FROM unnest($1::int[], $2::timestamptz[], $3::int8[], $4::float8[], $5::float8[], $6::float8[])
ON CONFLICT (series_id, bucket) DO UPDATE SET
    n = m.n + excluded.n,
    sum = m.sum + excluded.sum,
    min = least(m.min, excluded.min),
    max = greatest(m.max, excluded.max)
