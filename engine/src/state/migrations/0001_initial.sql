-- calpump state store, schema version 1. Times are RFC 3339 UTC text with milliseconds.

-- One row per (route, mailbox, calendar, backend): the cursor to continue from and how many
-- events the item index holds after the last commit (the empty-calendar guard compares it).
CREATE TABLE calendars (
    route        TEXT NOT NULL,
    mailbox      TEXT NOT NULL,
    calendar     TEXT NOT NULL,
    backend      TEXT NOT NULL,
    cursor_json  TEXT,
    event_count  INTEGER NOT NULL DEFAULT 0,
    last_commit  TEXT,
    PRIMARY KEY (route, mailbox, calendar, backend)
);

-- Source item id -> canonical event key, so a removal the source names only by its item id
-- (Graph `@removed`, EWS `Delete`) can be passed to the sinks as a key.
CREATE TABLE item_index (
    route      TEXT NOT NULL,
    mailbox    TEXT NOT NULL,
    calendar   TEXT NOT NULL,
    backend    TEXT NOT NULL,
    item_id    TEXT NOT NULL,
    event_key  TEXT NOT NULL,
    PRIMARY KEY (route, mailbox, calendar, backend, item_id)
);
CREATE INDEX item_index_by_key ON item_index (route, mailbox, calendar, backend, event_key);

CREATE TABLE runs (
    id           TEXT PRIMARY KEY,
    route        TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    finished_at  TEXT,
    status       TEXT NOT NULL,
    mailboxes    INTEGER NOT NULL DEFAULT 0,
    calendars    INTEGER NOT NULL DEFAULT 0,
    upserts      INTEGER NOT NULL DEFAULT 0,
    deletes      INTEGER NOT NULL DEFAULT 0,
    rejected     INTEGER NOT NULL DEFAULT 0,
    errors       INTEGER NOT NULL DEFAULT 0,
    errors_json  TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX runs_by_route ON runs (route, started_at);

CREATE TABLE mailbox_status (
    route                TEXT NOT NULL,
    mailbox              TEXT NOT NULL,
    name                 TEXT,
    last_attempt         TEXT,
    last_success         TEXT,
    failing_since        TEXT,
    last_error_code      TEXT,
    last_error_detail    TEXT,
    last_warning_code    TEXT,
    last_warning_detail  TEXT,
    PRIMARY KEY (route, mailbox)
);

CREATE TABLE rejections (
    route      TEXT NOT NULL,
    sink       TEXT NOT NULL,
    event_key  TEXT NOT NULL,
    mailbox    TEXT NOT NULL,
    calendar   TEXT NOT NULL,
    reason     TEXT NOT NULL,
    at         TEXT NOT NULL,
    PRIMARY KEY (route, sink, event_key)
);
