-- Outbox rows must commit in sequence order, or the relay could pass a lower sequence that
-- commits late. Holding this lock from the outbox insert to commit serialises just that step.
SELECT pg_advisory_xact_lock(7164908244171238726)
