SELECT dead_letter_id, message_key, message_value, received_at, error_kind, system_id, batch_id, source_partition, source_offset
FROM dead_letters
WHERE replayed_at IS NULL AND dead_letter_id > $4
  AND ($1::text IS NULL OR error_kind = $1)
  AND ($2::text IS NULL OR system_id = $2)
  AND ($3::timestamptz IS NULL OR received_at >= $3)
ORDER BY dead_letter_id LIMIT $5
