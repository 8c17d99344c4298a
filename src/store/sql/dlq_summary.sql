SELECT error_kind, count(*) AS total, count(*) FILTER (WHERE replayed_at IS NULL) AS pending, max(received_at) AS newest
FROM dead_letters GROUP BY error_kind ORDER BY total DESC
