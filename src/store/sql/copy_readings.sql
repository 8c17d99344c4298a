COPY readings (time, series_id, value) FROM STDIN (FORMAT binary)
