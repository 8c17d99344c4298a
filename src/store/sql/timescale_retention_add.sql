SELECT add_retention_policy($1::text::regclass, drop_after => $2::text::interval)
