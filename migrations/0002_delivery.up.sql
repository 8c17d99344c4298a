-- Exactly-once bookkeeping, written in the same transaction as the readings.

-- Where each consumer group resumes; updated as a compare-and-set on next_offset.
CREATE TABLE ingest_offsets (
    consumer_group text NOT NULL,
    topic          text NOT NULL,
    partition      integer NOT NULL,
    next_offset    bigint NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, partition)
);

-- Batches whose readings are stored; a batch id seen again is skipped.
CREATE TABLE ingested_batches (
    system_id   text NOT NULL,
    batch_id    text NOT NULL,
    readings    integer NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (system_id, batch_id)
);
CREATE INDEX ingested_batches_time ON ingested_batches (ingested_at);

-- Rejected input with the reason; the relay publishes each one to the dead-letter topic.
CREATE TABLE dead_letters (
    dead_letter_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at      timestamptz NOT NULL DEFAULT now(),
    source_topic     text NOT NULL,
    source_partition integer NOT NULL,
    source_offset    bigint NOT NULL,
    message_key      bytea,
    message_value    bytea,
    error_kind       text NOT NULL,
    error_message    text NOT NULL,
    system_id        text,
    batch_id         text,
    -- Set by `manifold dlq replay` when the message was sent to the input topic again.
    replayed_at      timestamptz
);
CREATE INDEX dead_letters_time ON dead_letters (received_at);
CREATE INDEX dead_letters_kind ON dead_letters (error_kind, received_at);
CREATE INDEX dead_letters_batch ON dead_letters (batch_id) WHERE batch_id IS NOT NULL;

-- Events to publish (dead letters, window-ready), in sequence order, by the relay.
CREATE TABLE outbox (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at   timestamptz NOT NULL DEFAULT now(),
    topic_role   text NOT NULL CHECK (topic_role IN ('dead_letters', 'windows_ready', 'scores')),
    message_key  bytea,
    payload      bytea NOT NULL,
    headers      jsonb NOT NULL DEFAULT '{}',
    published_at timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;

-- Event-time windows per system, and each system's newest event time (the watermark source).
CREATE TABLE windows (
    system_id       text NOT NULL,
    window_start    timestamptz NOT NULL,
    window_end      timestamptz NOT NULL,
    reading_count   bigint NOT NULL DEFAULT 0,
    sensors         text[] NOT NULL DEFAULT '{}',
    revision        integer NOT NULL DEFAULT 0,
    ready_revision  integer,
    last_reading_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (system_id, window_start),
    CHECK (window_start < window_end)
);
CREATE INDEX windows_open ON windows (last_reading_at) WHERE ready_revision IS NULL;

CREATE TABLE system_watermarks (
    system_id      text PRIMARY KEY,
    max_event_time timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- One row per component, window and revision; features explain the score.
CREATE TABLE anomaly_scores (
    system_id     text NOT NULL,
    component_id  text NOT NULL,
    window_start  timestamptz NOT NULL,
    window_end    timestamptz NOT NULL,
    revision      integer NOT NULL,
    model_version text NOT NULL,
    score         real NOT NULL CHECK (score >= 0 AND score <= 1),
    class         text,
    class_probs   jsonb,
    features      jsonb,
    computed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (system_id, component_id, window_start, revision)
);
CREATE INDEX anomaly_scores_time ON anomaly_scores (system_id, window_start DESC);
CREATE INDEX anomaly_scores_computed ON anomaly_scores (computed_at);
