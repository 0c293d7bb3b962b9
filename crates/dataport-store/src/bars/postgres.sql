-- Version 1 of the bar store in PostgreSQL: the same bars as SQLite's, and a
-- generation per symbol that every import and delete advances, so that a
-- replica's cache can tell with one indexed read whether its copy is current.
CREATE SEQUENCE bar_generation;
CREATE TABLE bar_symbols (
    symbol     text PRIMARY KEY,
    generation bigint NOT NULL
);
CREATE TABLE bars (
    symbol    text NOT NULL,
    day       date NOT NULL,
    open      double precision NOT NULL,
    high      double precision NOT NULL,
    low       double precision NOT NULL,
    close     double precision NOT NULL,
    volume    double precision,
    adj_close double precision,
    PRIMARY KEY (symbol, day)
);
CREATE TABLE bar_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);
