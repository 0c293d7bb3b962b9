-- Version 1 of the positions in PostgreSQL: the latest position of each
-- entity, its time and how many publishes it has had.
CREATE TABLE positions (
    entity   text PRIMARY KEY,
    x        double precision NOT NULL,
    y        double precision NOT NULL,
    z        double precision NOT NULL,
    updated  timestamptz NOT NULL,
    revision bigint NOT NULL
);
