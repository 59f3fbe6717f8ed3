-- calpump database sink, MariaDB/MySQL, version 1: events, mailboxes, runs.
-- DDL is not transactional here, so every statement is idempotent (IF NOT EXISTS) and indexes
-- are declared inside CREATE TABLE. utf8mb4 with a binary collation: 4-byte characters (emoji)
-- are stored as they are and keys compare exactly. Times are UTC in DATETIME(6).

CREATE TABLE IF NOT EXISTS {{prefix}}events (
    route              VARCHAR(255)  NOT NULL,
    event_key          VARCHAR(64)   NOT NULL,
    mailbox            VARCHAR(320)  NOT NULL,
    calendar           VARCHAR(1024) NOT NULL,
    kind               VARCHAR(32)   NOT NULL,
    subject            TEXT          NOT NULL,
    location           TEXT,
    organizer_name     TEXT,
    organizer_email    TEXT,
    start_utc          DATETIME(6)   NOT NULL,
    end_utc            DATETIME(6)   NOT NULL,
    time_zone          TEXT,
    all_day            BOOLEAN       NOT NULL,
    show_as            VARCHAR(32)   NOT NULL,
    sensitivity        VARCHAR(32)   NOT NULL,
    cancelled          BOOLEAN       NOT NULL,
    online_meeting_url TEXT,
    series_key         VARCHAR(64),
    original_start     DATETIME(6),
    global_object_id   TEXT          NOT NULL,
    ical_uid           TEXT,
    source_backend     VARCHAR(64)   NOT NULL,
    source_item_id     TEXT          NOT NULL,
    source_change_key  TEXT,
    last_modified      DATETIME(6),
    attendees          JSON          NOT NULL,
    categories         JSON          NOT NULL,
    content_hash       VARCHAR(64)   NOT NULL,
    synced_at          DATETIME(6)   NOT NULL,
    run_id             VARCHAR(255)  NOT NULL,
    deleted_at         DATETIME(6),
    PRIMARY KEY (route, event_key),
    -- "What is in room X between A and B" (no partial indexes here: add `deleted_at IS NULL`).
    INDEX {{prefix}}events_room_time (mailbox, start_utc, end_utc),
    -- The sink's own scope: the rows of one (route, mailbox) inside a snapshot's window.
    INDEX {{prefix}}events_scope (route, mailbox, start_utc),
    CONSTRAINT {{prefix}}events_end_after_start CHECK (end_utc >= start_utc)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS {{prefix}}mailboxes (
    route         VARCHAR(255) NOT NULL,
    mailbox       VARCHAR(320) NOT NULL,
    display_name  TEXT,
    first_seen_at DATETIME(6)  NOT NULL,
    last_seen_at  DATETIME(6)  NOT NULL,
    last_run_id   VARCHAR(255) NOT NULL,
    event_count   BIGINT       NOT NULL,
    deleted_count BIGINT       NOT NULL,
    PRIMARY KEY (route, mailbox)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS {{prefix}}runs (
    run_id      VARCHAR(255) NOT NULL,
    route       VARCHAR(255) NOT NULL,
    started_at  DATETIME(6)  NOT NULL,
    finished_at DATETIME(6)  NOT NULL,
    batches     BIGINT       NOT NULL,
    upserted    BIGINT       NOT NULL,
    unchanged   BIGINT       NOT NULL,
    deleted     BIGINT       NOT NULL,
    rejected    BIGINT       NOT NULL,
    PRIMARY KEY (run_id, route)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
