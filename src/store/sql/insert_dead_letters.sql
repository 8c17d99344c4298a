-- Rejected messages, and one outbox event each for the relay to publish to the dead-letter topic
-- ($10: the dead-letter topic role).
WITH letters AS (
    INSERT INTO dead_letters (source_topic, source_partition, source_offset, message_key, message_value,
                              error_kind, error_message, system_id, batch_id)
    SELECT * FROM unnest($1::text[], $2::int[], $3::int8[], $4::bytea[], $5::bytea[], $6::text[], $7::text[],
                         $8::text[], $9::text[])
    -- A message is dead-lettered once: a chunk written twice cannot insert or publish it again.
    ON CONFLICT (source_topic, source_partition, source_offset) DO NOTHING
    RETURNING dead_letter_id, received_at, source_topic, source_partition, source_offset, message_key,
              message_value, error_kind, error_message
)
INSERT INTO outbox (topic_role, message_key, payload, headers)
SELECT $10::text, message_key, coalesce(message_value, '\x'::bytea),
       jsonb_build_object(
           'manifold.error.kind', error_kind,
           'manifold.error.message', error_message,
           'manifold.source.topic', source_topic,
           'manifold.source.partition', source_partition::text,
           'manifold.source.offset', source_offset::text,
           'manifold.dead_letter.id', dead_letter_id::text,
           'manifold.time', to_char(received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
FROM letters
ORDER BY dead_letter_id
