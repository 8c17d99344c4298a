SELECT partition, next_offset FROM ingest_offsets WHERE consumer_group = $1 AND topic = $2 AND partition = ANY($3)
