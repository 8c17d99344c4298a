SELECT seq, topic_role, reason, message, failed_at FROM outbox_failures ORDER BY seq DESC LIMIT $1
