SELECT dead_letter_id, message_key, message_value FROM dead_letters
WHERE replayed_at IS NULL AND ($1::text IS NULL OR error_kind = $1) AND dead_letter_id > $2
ORDER BY dead_letter_id LIMIT $3
