-- Events of one topic role, payloads serialized by the caller (window-ready: codec::WindowReady
-- as JSON; the relay encodes it to Avro). In array order, under the outbox lock. $4 holds each
-- event's traceparent, or NULL (trace export off): the relay sends the headers with the event.
INSERT INTO outbox (topic_role, message_key, payload, headers)
SELECT $1::text, k, p, CASE WHEN t IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('traceparent', t) END
FROM unnest($2::bytea[], $3::bytea[], $4::text[]) AS e(k, p, t)
