-- Events of one topic role, payloads serialized by the caller (window-ready: codec::WindowReady
-- as JSON; the relay encodes it to Avro). In array order, under the outbox lock.
INSERT INTO outbox (topic_role, message_key, payload)
SELECT $1::text, k, p FROM unnest($2::bytea[], $3::bytea[]) AS e(k, p)
