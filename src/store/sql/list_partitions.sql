-- Tables named like readings partitions, attached or not, with a pending concurrent detach.
SELECT c.relname::text AS name,
       i.inhparent IS NOT NULL AS attached,
       coalesce(i.inhdetachpending, false) AS detach_pending
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
LEFT JOIN pg_inherits i ON i.inhrelid = c.oid AND i.inhparent = 'readings'::regclass
WHERE c.relkind = 'r' AND c.relname ~ '^readings_p[0-9]{8}$'
