-- What the three kinds of failure leave behind (transient: nothing; data-permanent: a record
-- of the one message, event or window set aside; systemic: nothing, it pauses instead).

-- A message is dead-lettered at most once: the backstop against a chunk written twice (a
-- rebalance racing a write once did that). Earlier doubles keep their first row.
DELETE FROM dead_letters d USING dead_letters e
WHERE d.source_topic = e.source_topic AND d.source_partition = e.source_partition
  AND d.source_offset = e.source_offset AND d.dead_letter_id > e.dead_letter_id;
CREATE UNIQUE INDEX dead_letters_source ON dead_letters (source_topic, source_partition, source_offset);

-- Outbox events the broker refused for their content. The relay records the failure here
-- before it publishes the rest of the run without the event; nothing is skipped silently.
CREATE TABLE outbox_failures (
    seq        bigint PRIMARY KEY,
    topic_role text NOT NULL,
    reason     text NOT NULL,
    message    text NOT NULL,
    failed_at  timestamptz NOT NULL DEFAULT now()
);

-- Window-ready events infer could not score for their content (an undecodable record, a
-- scorer answering out of range). Infer commits past them; `manifold rescore` retries them.
CREATE TABLE scoring_failures (
    failure_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_topic     text NOT NULL,
    source_partition integer NOT NULL,
    source_offset    bigint NOT NULL,
    system_id        text,
    window_start     timestamptz,
    window_end       timestamptz,
    revision         integer,
    reason           text NOT NULL,
    message          text NOT NULL,
    failed_at        timestamptz NOT NULL DEFAULT now(),
    retried_at       timestamptz,
    UNIQUE (source_topic, source_partition, source_offset)
);
CREATE INDEX scoring_failures_open ON scoring_failures (failed_at) WHERE retried_at IS NULL;

-- windows: one readiness rule a device clock cannot poison.
-- The windows the rule lets be announced: those whose end has passed by the database clock.
-- Every statement that announces a window (watermark, idle, rescore) updates through this view,
-- and a unit test refuses one that marks a window ready on the table itself, so a rule added
-- later cannot announce a window early either.
CREATE VIEW windows_due AS
SELECT system_id, window_start, window_end, reading_count, sensors, revision, ready_revision, last_reading_at
FROM windows
WHERE window_end <= now();
-- Watermarks a fast device clock dragged ahead before the cap existed come back to the clock.
UPDATE system_watermarks SET max_event_time = now() WHERE max_event_time > now();

-- relay: retention prunes outbox failures by time (prune.sql), like every other table.
CREATE INDEX outbox_failures_time ON outbox_failures (failed_at);
