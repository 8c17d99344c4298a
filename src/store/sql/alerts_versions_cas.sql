-- Compare-and-set for several systems at once: moves each system's version from the one read
-- ($2) to one more, and returns the systems moved; a system another derivation moved first is
-- not returned (and nothing of it is touched).
INSERT INTO alert_versions AS v (system_id, version)
SELECT u.system_id, u.version + 1 FROM unnest($1::text[], $2::int8[]) AS u(system_id, version)
ON CONFLICT (system_id) DO UPDATE SET version = v.version + 1 WHERE v.version = excluded.version - 1
RETURNING system_id
