-- Compare-and-set: moves the system's version from $2 to $2 + 1, or touches nothing (and
-- returns no row) when another derivation moved it first.
INSERT INTO alert_versions AS v (system_id, version) VALUES ($1, $2::int8 + 1)
ON CONFLICT (system_id) DO UPDATE SET version = v.version + 1 WHERE v.version = $2::int8
RETURNING version
