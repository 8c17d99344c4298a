-- Re-set from config on every pass, so a changed retention takes effect without a migration.
SELECT remove_retention_policy('readings', if_exists => true);
SELECT add_retention_policy('readings', drop_after => INTERVAL '{days} days');
SELECT remove_retention_policy('readings_1m', if_exists => true);
SELECT add_retention_policy('readings_1m', drop_after => INTERVAL '{days} days');
