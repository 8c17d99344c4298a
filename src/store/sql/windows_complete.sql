-- Marks the given windows ($1 systems, $2 starts) that are complete by their sensors' sampling
-- rates (manifold_window_complete) ready at once, without waiting for the watermark and the lateness;
-- through windows_due like every announcing statement, so never while their end is in the
-- future (such a window is announced once its end passes, by the watermark or the idle close).
UPDATE windows_due w SET ready_revision = w.revision
FROM unnest($1::text[], $2::timestamptz[]) AS d(s, ws)
WHERE w.system_id = d.s AND w.window_start = d.ws AND w.ready_revision IS NULL
  AND manifold_window_complete(w.system_id, w.window_start, w.window_end)
RETURNING w.system_id, w.window_start, w.window_end, w.revision, w.reading_count, w.sensors, w.trace_links
