-- Window-ready events as JSON with the Avro schema's field names; the relay encodes them.
INSERT INTO outbox (topic_role, message_key, payload)
SELECT 'windows_ready', convert_to(s, 'UTF8'), convert_to(jsonb_build_object(
           'system_id', s, 'window_start', ws, 'window_end', we, 'revision', r,
           'reading_count', n, 'sensors', string_to_array(sens, ','), 'closed_by', why)::text, 'UTF8')
FROM unnest($1::text[], $2::int8[], $3::int8[], $4::int[], $5::int8[], $6::text[], $7::text[])
    AS e(s, ws, we, r, n, sens, why)
