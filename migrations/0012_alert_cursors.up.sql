-- Where each component's alert derivation stands after its newest scored window
-- (domain::alerts::Cursor, as JSON): while scores arrive in window order, infer derives only the
-- windows after it instead of the whole lookback again for every batch. A late revision or a
-- rescore of a window at or before it still derives the lookback, and rewrites the cursor.
CREATE TABLE alert_cursors (
    system_id    text NOT NULL,
    component_id text NOT NULL,
    cursor       jsonb NOT NULL,
    PRIMARY KEY (system_id, component_id)
);
