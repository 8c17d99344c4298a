SELECT dead_letter_id, received_at, error_kind, error_message, system_id, batch_id, source_partition, source_offset
FROM dead_letters WHERE ($1::text IS NULL OR error_kind = $1)
ORDER BY dead_letter_id DESC LIMIT $2
