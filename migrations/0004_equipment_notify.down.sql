DROP TRIGGER IF EXISTS series_changed ON series;
DROP TRIGGER IF EXISTS equipment_changed ON equipment;
DROP FUNCTION IF EXISTS manifold_notify_equipment();
