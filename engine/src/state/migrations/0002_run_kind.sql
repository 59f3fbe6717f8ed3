-- calpump state store, schema version 2: run history entries that are not syncs.
--
-- `kind` says what an entry of `runs` records: 'sync' (a run of the route; every entry before
-- version 2 that is not a switch) or 'switch' (`calpump migrate switch` re-pointed the route);
-- later versions may add kinds. `note` is a sentence for people about a non-sync entry,
-- `data_json` its machine-readable details (a switch: profiles and backends, read by `--back`).
ALTER TABLE runs ADD COLUMN kind TEXT NOT NULL DEFAULT 'sync';
ALTER TABLE runs ADD COLUMN note TEXT;
ALTER TABLE runs ADD COLUMN data_json TEXT;

-- Before version 2 a switch was a run carrying the entry `sync.BackendSwitched` among its
-- errors, its detail ending in the tag `[from=<profile>/<backend> to=… back=…]`. Such entries
-- become switches: the detail becomes the note (the tag stays in it, `--back` reads it there
-- when `data_json` is absent) and the entry leaves the errors. SET expressions all see the row
-- as it was, so `note` reads the old `errors_json`. Unreadable `errors_json` is left alone.
UPDATE runs SET
    kind = 'switch',
    note = (SELECT json_extract(e.value, '$.detail') FROM json_each(CASE WHEN json_valid(runs.errors_json) THEN runs.errors_json ELSE '[]' END) AS e
            WHERE json_extract(e.value, '$.code') = 'sync.BackendSwitched' LIMIT 1),
    errors_json = (SELECT json_group_array(json(e.value)) FROM json_each(CASE WHEN json_valid(runs.errors_json) THEN runs.errors_json ELSE '[]' END) AS e
                   WHERE json_extract(e.value, '$.code') IS NOT 'sync.BackendSwitched')
WHERE EXISTS (SELECT 1 FROM json_each(CASE WHEN json_valid(runs.errors_json) THEN runs.errors_json ELSE '[]' END) AS e
              WHERE json_extract(e.value, '$.code') = 'sync.BackendSwitched');

CREATE INDEX runs_by_route_kind ON runs (route, kind, started_at);
