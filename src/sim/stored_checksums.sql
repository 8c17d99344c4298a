-- The database's twin of src/sim/checksum.rs: per (system, sensor), the readings stored and the
-- sum modulo 2^64 of each reading's hash, the first 8 bytes of
-- sha256(event time in µs as int8 big-endian || value as float8 big-endian) read as a big-endian
-- integer. int8 arithmetic raises on overflow, so the signed hashes are summed as numeric and
-- the sum is brought into [0, 2^64) (a negative int8 is the same residue as its unsigned bits).
SELECT s.system_id,
       s.sensor_id,
       count(*)::int8 AS readings,
       ((sum(('x' || encode(substring(sha256(int8send((extract(epoch FROM r.time) * 1000000)::int8) || float8send(r.value)) FROM 1 FOR 8), 'hex'))::bit(64)::int8::numeric)
         % 18446744073709551616 + 18446744073709551616) % 18446744073709551616)::text AS checksum
FROM readings r
JOIN series s USING (series_id)
GROUP BY s.system_id, s.sensor_id
