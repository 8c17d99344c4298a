-- Ingest caches equipment metadata; any change to equipment or series notifies it, whoever
-- made the change (API, simulator, psql).
CREATE FUNCTION manifold_notify_equipment() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('manifold_equipment', OLD.system_id);
    ELSE
        PERFORM pg_notify('manifold_equipment', NEW.system_id);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER equipment_changed AFTER INSERT OR UPDATE OR DELETE ON equipment
    FOR EACH ROW EXECUTE FUNCTION manifold_notify_equipment();
CREATE TRIGGER series_changed AFTER INSERT OR UPDATE OR DELETE ON series
    FOR EACH ROW EXECUTE FUNCTION manifold_notify_equipment();
