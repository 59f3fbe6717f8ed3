-- calpump database sink, PostgreSQL, version 1: events, mailboxes, runs.
-- {{schema}} expands to `schema.` (or nothing) and {{prefix}} to the configured table prefix.

CREATE TABLE {{schema}}{{prefix}}events (
    route              text        NOT NULL,
    event_key          text        NOT NULL,
    mailbox            text        NOT NULL,
    calendar           text        NOT NULL,
    kind               text        NOT NULL,
    subject            text        NOT NULL,
    location           text,
    organizer_name     text,
    organizer_email    text,
    start_utc          timestamptz NOT NULL,
    end_utc            timestamptz NOT NULL,
    time_zone          text,
    all_day            boolean     NOT NULL,
    show_as            text        NOT NULL,
    sensitivity        text        NOT NULL,
    cancelled          boolean     NOT NULL,
    online_meeting_url text,
    series_key         text,
    original_start     timestamptz,
    global_object_id   text        NOT NULL,
    ical_uid           text,
    source_backend     text        NOT NULL,
    source_item_id     text        NOT NULL,
    source_change_key  text,
    last_modified      timestamptz,
    attendees          jsonb       NOT NULL,
    categories         jsonb       NOT NULL,
    content_hash       text        NOT NULL,
    synced_at          timestamptz NOT NULL,
    run_id             text        NOT NULL,
    deleted_at         timestamptz,
    PRIMARY KEY (route, event_key),
    CHECK (end_utc >= start_utc)
);

-- "What is in room X between A and B": live rows only.
CREATE INDEX {{prefix}}events_room_time
    ON {{schema}}{{prefix}}events (mailbox, start_utc, end_utc)
    WHERE deleted_at IS NULL;

-- The sink's own scope: the rows of one (route, mailbox, calendar) inside a snapshot's window.
CREATE INDEX {{prefix}}events_scope
    ON {{schema}}{{prefix}}events (route, mailbox, calendar, start_utc);

CREATE TABLE {{schema}}{{prefix}}mailboxes (
    route         text        NOT NULL,
    mailbox       text        NOT NULL,
    display_name  text,
    first_seen_at timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    last_run_id   text        NOT NULL,
    event_count   bigint      NOT NULL,
    deleted_count bigint      NOT NULL,
    PRIMARY KEY (route, mailbox)
);

CREATE TABLE {{schema}}{{prefix}}runs (
    run_id      text        NOT NULL,
    route       text        NOT NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    batches     bigint      NOT NULL,
    upserted    bigint      NOT NULL,
    unchanged   bigint      NOT NULL,
    deleted     bigint      NOT NULL,
    rejected    bigint      NOT NULL,
    PRIMARY KEY (run_id, route)
);
