-- `manifold offsets reset`: where each partition resumes, whatever was stored before.
INSERT INTO ingest_offsets (consumer_group, topic, partition, next_offset)
SELECT $1, $2, p, o FROM unnest($3::int[], $4::int8[]) AS t(p, o)
ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET next_offset = excluded.next_offset, updated_at = now()
