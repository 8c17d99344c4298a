-- Runs outside a transaction block (TimescaleDB refuses it inside one).
CALL refresh_continuous_aggregate('readings_1m', $1::timestamptz, $2::timestamptz)
