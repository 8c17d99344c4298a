-- Last use of keys, flushed from memory; an older time never replaces a newer one.
UPDATE api_keys k SET last_used_at = t.at
FROM unnest($1::uuid[], $2::timestamptz[]) AS t (key_id, at)
WHERE k.key_id = t.key_id AND (k.last_used_at IS NULL OR k.last_used_at < t.at)
