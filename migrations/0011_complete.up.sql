-- Complete windows (README, "Windows and scores"): per window and sensor, the distinct sample
-- slots its readings filled (event time quantized to 1/rate from the window's start), as a
-- bitmap of ceil(rate × length) bits. The ingest chunk ORs its own bitmap in, one row per
-- (window, sensor) per chunk; a batch stored twice fills the same bits and completes nothing.
CREATE TABLE window_slots (
    system_id    text NOT NULL,
    window_start timestamptz NOT NULL,
    series_id    integer NOT NULL REFERENCES series (series_id) ON DELETE CASCADE,
    slots        bit varying NOT NULL,
    PRIMARY KEY (system_id, window_start, series_id),
    FOREIGN KEY (system_id, window_start) REFERENCES windows (system_id, window_start) ON DELETE CASCADE
);
CREATE INDEX window_slots_series ON window_slots (series_id);

-- The number of slots of a sensor sampling at `rate` in a window of `length` (the last one may
-- be partial); window::SlotShape computes the same in the chunk.
CREATE FUNCTION manifold_window_slot_len(rate double precision, length interval) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$ SELECT ceil(rate * extract(epoch FROM length)::float8 - 1e-9)::integer $$;

-- A window is complete when every sensor of its system's topology has at least
-- floor(rate × length) distinct slots in it. A sensor without a positive rate, or whose bitmap
-- was written for another rate, is never complete: the window falls back to the watermark.
-- (A sensor with no row at all has no slots: the coalesce keeps NULL from passing as complete.)
CREATE FUNCTION manifold_window_complete(p_system text, p_start timestamptz, p_end timestamptz) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM series WHERE system_id = p_system) AND NOT EXISTS (
        SELECT 1 FROM series s
        LEFT JOIN window_slots c ON c.system_id = p_system AND c.window_start = p_start AND c.series_id = s.series_id
        WHERE s.system_id = p_system
          AND NOT (s.sample_rate_hz > 0
              AND (floor(s.sample_rate_hz * extract(epoch FROM p_end - p_start)::float8 + 1e-9) = 0
                   OR coalesce(length(c.slots) = manifold_window_slot_len(s.sample_rate_hz, p_end - p_start)
                       AND bit_count(c.slots) >= floor(s.sample_rate_hz * extract(epoch FROM p_end - p_start)::float8 + 1e-9), false)))
    )
$$;
