"""The Graph peer of the end-to-end benchmark: the same job as calpump, done the naive way.

A plain-`requests` client (no batching, no delta, no concurrency): one client-credentials token,
then for each room, one after the other, GET /users/{room}/calendarView for the window,
following @odata.nextLink at Graph's default page size, and every instance written into a SQLite
table (one transaction per room). A 429/503 is waited out as its Retry-After says.
Docs followed: user-list-calendarview.md, concepts/paging.md, concepts/throttling.md.

Environment (set by bench/e2e/main.rs):
  PEER_BASE      http://127.0.0.1:PORT (token authority and Graph host)
  PEER_TENANT, PEER_CLIENT_ID, PEER_SECRET
  PEER_ROOMS     a file with one room address per line
  PEER_START, PEER_END   the window (RFC 3339, UTC)
  PEER_DB        the SQLite file to write

Prints one JSON line: {"rooms": n, "events": rows, "http_requests": n}.
"""

import json
import os
import sqlite3
import sys
import time

import requests

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    mailbox TEXT NOT NULL, id TEXT NOT NULL, ical_uid TEXT, type TEXT, series_master_id TEXT,
    subject TEXT, location TEXT, organizer TEXT, start_utc TEXT NOT NULL, end_utc TEXT NOT NULL,
    all_day INTEGER, show_as TEXT, sensitivity TEXT, cancelled INTEGER, online_url TEXT,
    categories TEXT, last_modified TEXT,
    PRIMARY KEY (mailbox, id)
)
"""


def get(session, url, params, counter):
    while True:
        counter[0] += 1
        r = session.get(url, params=params, headers={"Prefer": 'outlook.timezone="UTC"'}, timeout=60)
        if r.status_code in (429, 503):
            time.sleep(float(r.headers.get("Retry-After", "1")))
            continue
        r.raise_for_status()
        return r.json()


def row(room, e):
    organizer = ((e.get("organizer") or {}).get("emailAddress") or {}).get("address")
    online = (e.get("onlineMeeting") or {}).get("joinUrl")
    return (
        room, e["id"], e.get("iCalUId"), e.get("type"), e.get("seriesMasterId"), e.get("subject"),
        (e.get("location") or {}).get("displayName"), organizer,
        e["start"]["dateTime"], e["end"]["dateTime"], int(bool(e.get("isAllDay"))),
        e.get("showAs"), e.get("sensitivity"), int(bool(e.get("isCancelled"))), online,
        json.dumps(e.get("categories") or []), e.get("lastModifiedDateTime"),
    )


def main():
    base = os.environ["PEER_BASE"]
    tenant = os.environ["PEER_TENANT"]
    start, end = os.environ["PEER_START"], os.environ["PEER_END"]
    with open(os.environ["PEER_ROOMS"], encoding="utf-8") as f:
        rooms = [line.strip() for line in f if line.strip()]
    db = sqlite3.connect(os.environ["PEER_DB"])
    db.execute(SCHEMA)
    counter = [0]

    s = requests.Session()
    counter[0] += 1
    tok = s.post(
        f"{base}/{tenant}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": os.environ["PEER_CLIENT_ID"],
            "client_secret": os.environ["PEER_SECRET"],
            "scope": "https://graph.microsoft.com/.default",
        },
        timeout=60,
    )
    tok.raise_for_status()
    s.headers["Authorization"] = "Bearer " + tok.json()["access_token"]

    for room in rooms:
        url = f"{base}/v1.0/users/{room}/calendarView"
        params = {"startDateTime": start, "endDateTime": end}
        rows = []
        while url:
            body = get(s, url, params, counter)
            rows.extend(row(room, e) for e in body.get("value", []))
            url, params = body.get("@odata.nextLink"), None
        with db:
            db.executemany(f"INSERT OR REPLACE INTO events VALUES ({','.join('?' * 17)})", rows)

    events = db.execute("SELECT count(*) FROM events").fetchone()[0]
    db.close()
    print(json.dumps({"rooms": len(rooms), "events": events, "http_requests": counter[0]}))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # the bench prints stderr; make the cause one readable line
        print(f"graph peer failed: {e!r}", file=sys.stderr)
        sys.exit(1)
