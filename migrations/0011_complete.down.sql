DROP FUNCTION manifold_window_complete(text, timestamptz, timestamptz);
DROP FUNCTION manifold_window_slot_len(double precision, interval);
DROP TABLE window_slots;
