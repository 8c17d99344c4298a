-- Condition alerts (issue 13): derived by infer from the latest-revision scores of a system, in
-- the same transaction as the state they were derived from (see src/store/alerts/).

-- One row per alert; rewritten when a derivation changes it. A withdrawn alert stays (status
-- 'withdrawn') so its id and its acknowledgement keep meaning something. The ack columns are
-- never written by a derivation: an ack survives a revision of the same alert.
CREATE TABLE alerts (
    alert_id             text PRIMARY KEY,
    system_id            text NOT NULL,
    component_id         text NOT NULL,
    level                text NOT NULL CHECK (level IN ('warning', 'critical')),
    status               text NOT NULL CHECK (status IN ('open', 'cleared', 'withdrawn')),
    opened_window_start  timestamptz NOT NULL,
    opened_window_end    timestamptz NOT NULL,
    cleared_window_start timestamptz,
    last_event           text NOT NULL,
    updated_at           timestamptz NOT NULL DEFAULT now(),
    acked_by             uuid,
    acked_at             timestamptz
);
CREATE INDEX alerts_system ON alerts (system_id, opened_window_start DESC);
CREATE INDEX alerts_updated ON alerts (updated_at);

-- Each event, keyed by the scored window revision whose scoring caused it: a batch whose Kafka
-- transaction aborted finds its events here when it is retried, and publishes them then.
CREATE TABLE alert_events (
    event_id       text PRIMARY KEY,
    -- The order events were made in (several can come from one derivation).
    seq            bigserial NOT NULL,
    system_id      text NOT NULL,
    alert_id       text NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('opened', 'escalated', 'cleared', 'revised', 'withdrawn')),
    cause_start    timestamptz NOT NULL,
    cause_revision integer NOT NULL,
    alert          jsonb NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_events_cause ON alert_events (system_id, cause_start, cause_revision);
CREATE INDEX alert_events_created ON alert_events (created_at);

-- The compare-and-set guard: a derivation writes only if the system's version is the one it
-- read, so a fenced zombie worker's late derivation cannot overwrite a newer one.
CREATE TABLE alert_versions (
    system_id text PRIMARY KEY,
    version   bigint NOT NULL
);

-- The API's live feed: an alert changed (on the scores' channel, so one listener serves both).
CREATE FUNCTION manifold_notify_alerts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('manifold_scores', json_build_object('alert_id', NEW.alert_id)::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER alerts_written AFTER INSERT OR UPDATE ON alerts
    FOR EACH ROW EXECUTE FUNCTION manifold_notify_alerts();
