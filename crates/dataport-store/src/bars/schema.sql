-- Version 1 of the bar store: one row per symbol and trading day.
CREATE TABLE bars (
    symbol TEXT NOT NULL,
    date   TEXT NOT NULL,  -- YYYY-MM-DD, so text order is date order
    open   REAL NOT NULL,
    high   REAL NOT NULL,
    low    REAL NOT NULL,
    close  REAL NOT NULL,
    volume REAL,
    PRIMARY KEY (symbol, date)
) WITHOUT ROWID;
