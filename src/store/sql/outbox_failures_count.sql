SELECT count(*) FROM outbox_failures
