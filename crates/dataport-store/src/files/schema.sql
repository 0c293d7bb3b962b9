-- Version 1 of the file index: one row per stored file. The content of a
-- file is the object file objects/<object>; a row is written in the same
-- transaction that makes the object the file's content.
CREATE TABLE files (
    name     TEXT PRIMARY KEY NOT NULL,  -- checked by validate_name
    object   TEXT NOT NULL UNIQUE,       -- file name under objects/
    size     INTEGER NOT NULL,
    sha256   TEXT NOT NULL,              -- 64 lowercase hex digits
    created  INTEGER NOT NULL,           -- nanoseconds since the Unix epoch
    modified INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
