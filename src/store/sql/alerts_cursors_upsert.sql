-- The cursors of the components derived, one row per system and component.
INSERT INTO alert_cursors AS c (system_id, component_id, cursor)
SELECT u.system_id, u.component_id, u.cursor FROM unnest($1::text[], $2::text[], $3::jsonb[]) AS u(system_id, component_id, cursor)
ON CONFLICT (system_id, component_id) DO UPDATE SET cursor = excluded.cursor
