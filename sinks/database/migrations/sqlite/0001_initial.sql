-- calpump database sink, SQLite, version 1: events, mailboxes, runs.
-- Times are UTC text in RFC 3339 (`2026-11-28T09:00:00+00:00`, fractions only when present),
-- which sorts like the instants it names. Booleans are 0/1, JSON is text.

CREATE TABLE {{prefix}}events (
    route              TEXT    NOT NULL,
    event_key          TEXT    NOT NULL,
    mailbox            TEXT    NOT NULL,
    calendar           TEXT    NOT NULL,
    kind               TEXT    NOT NULL,
    subject            TEXT    NOT NULL,
    location           TEXT,
    organizer_name     TEXT,
    organizer_email    TEXT,
    start_utc          TEXT    NOT NULL,
    end_utc            TEXT    NOT NULL,
    time_zone          TEXT,
    all_day            INTEGER NOT NULL,
    show_as            TEXT    NOT NULL,
    sensitivity        TEXT    NOT NULL,
    cancelled          INTEGER NOT NULL,
    online_meeting_url TEXT,
    series_key         TEXT,
    original_start     TEXT,
    global_object_id   TEXT    NOT NULL,
    ical_uid           TEXT,
    source_backend     TEXT    NOT NULL,
    source_item_id     TEXT    NOT NULL,
    source_change_key  TEXT,
    last_modified      TEXT,
    attendees          TEXT    NOT NULL CHECK (json_valid(attendees)),
    categories         TEXT    NOT NULL CHECK (json_valid(categories)),
    content_hash       TEXT    NOT NULL,
    synced_at          TEXT    NOT NULL,
    run_id             TEXT    NOT NULL,
    deleted_at         TEXT,
    PRIMARY KEY (route, event_key),
    CHECK (end_utc >= start_utc)
);

-- "What is in room X between A and B": live rows only (queries must say `deleted_at IS NULL`).
CREATE INDEX {{prefix}}events_room_time
    ON {{prefix}}events (mailbox, start_utc, end_utc)
    WHERE deleted_at IS NULL;

-- The sink's own scope: the rows of one (route, mailbox, calendar) inside a snapshot's window.
CREATE INDEX {{prefix}}events_scope
    ON {{prefix}}events (route, mailbox, calendar, start_utc);

CREATE TABLE {{prefix}}mailboxes (
    route         TEXT    NOT NULL,
    mailbox       TEXT    NOT NULL,
    display_name  TEXT,
    first_seen_at TEXT    NOT NULL,
    last_seen_at  TEXT    NOT NULL,
    last_run_id   TEXT    NOT NULL,
    event_count   INTEGER NOT NULL,
    deleted_count INTEGER NOT NULL,
    PRIMARY KEY (route, mailbox)
);

CREATE TABLE {{prefix}}runs (
    run_id      TEXT    NOT NULL,
    route       TEXT    NOT NULL,
    started_at  TEXT    NOT NULL,
    finished_at TEXT    NOT NULL,
    batches     INTEGER NOT NULL,
    upserted    INTEGER NOT NULL,
    unchanged   INTEGER NOT NULL,
    deleted     INTEGER NOT NULL,
    rejected    INTEGER NOT NULL,
    PRIMARY KEY (run_id, route)
);
