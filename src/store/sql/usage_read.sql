SELECT day, requests, readings FROM usage_daily
WHERE user_id = $1 AND day >= $2 AND day <= $3
ORDER BY day
