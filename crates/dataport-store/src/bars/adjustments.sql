-- Version 3 of the bar store: each bar may carry its close adjusted for later
-- splits and dividends; and the store remembers what it was given once (the
-- sample bars), so removing every symbol does not bring the sample back.
ALTER TABLE bars ADD COLUMN adj_close REAL;
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
