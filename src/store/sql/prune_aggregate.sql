DELETE FROM readings_1m WHERE bucket < $1
