-- Once per source record: a batch retried after a failed Kafka commit finds its failures here
-- and adds nothing.
INSERT INTO scoring_failures (source_topic, source_partition, source_offset, system_id, window_start, window_end,
                              revision, reason, message)
SELECT * FROM unnest($1::text[], $2::int4[], $3::int8[], $4::text[], $5::timestamptz[], $6::timestamptz[],
                     $7::int4[], $8::text[], $9::text[])
ON CONFLICT (source_topic, source_partition, source_offset) DO NOTHING
