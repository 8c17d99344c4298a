-- The cursors of a system's components after a derivation, one row per component.
INSERT INTO alert_cursors AS c (system_id, component_id, cursor)
SELECT $1, u.component_id, u.cursor FROM unnest($2::text[], $3::jsonb[]) AS u(component_id, cursor)
ON CONFLICT (system_id, component_id) DO UPDATE SET cursor = excluded.cursor
