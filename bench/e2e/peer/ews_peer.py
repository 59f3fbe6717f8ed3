"""The EWS peer of the end-to-end benchmark: the same job as calpump, done the naive way.

exchangelib as its documentation shows it: one Configuration (NTLM or Basic), then for each room,
one after the other, an Account with impersonation and `account.calendar.view(start, end)`
for the window, every occurrence written into a SQLite table (one transaction per room).
exchangelib decides by itself which EWS operations that takes (the bench counts them at the
simulator).

Environment (set by bench/e2e/main.rs):
  PEER_BASE      http://127.0.0.1:PORT
  PEER_USER      CONTOSO\\svc-pump (NTLM) or svc-pump@contoso.com (Basic)
  PEER_PASS      its password
  PEER_AUTH      ntlm | basic
  PEER_ROOMS     a file with one room address per line
  PEER_START, PEER_END   the window (RFC 3339, UTC)
  PEER_DB        the SQLite file to write

Prints one JSON line: {"rooms": n, "events": rows}.
"""

import datetime
import json
import os
import sqlite3
import sys

from exchangelib import BASIC, IMPERSONATION, NTLM, UTC, Account, Configuration, Credentials, EWSDateTime

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    mailbox TEXT NOT NULL, id TEXT NOT NULL, uid TEXT, type TEXT, subject TEXT, location TEXT,
    organizer TEXT, start_utc TEXT NOT NULL, end_utc TEXT NOT NULL, all_day INTEGER,
    show_as TEXT, sensitivity TEXT, cancelled INTEGER, categories TEXT, last_modified TEXT,
    PRIMARY KEY (mailbox, id)
)
"""


def ews_time(text):
    dt = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return EWSDateTime.from_datetime(dt.astimezone(datetime.timezone.utc)).astimezone(UTC)


def iso(value):
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value.isoformat()  # an all-day event's EWSDate


def row(room, item):
    organizer = item.organizer.email_address if item.organizer else None
    return (
        room, item.id, item.uid, item.type, item.subject, item.location, organizer,
        iso(item.start), iso(item.end), int(bool(item.is_all_day)), item.legacy_free_busy_status,
        item.sensitivity, int(bool(item.is_cancelled)), json.dumps(item.categories or []),
        iso(item.last_modified_time),
    )


def main():
    base = os.environ["PEER_BASE"]
    auth = {"ntlm": NTLM, "basic": BASIC}[os.environ.get("PEER_AUTH", "ntlm")]
    start, end = ews_time(os.environ["PEER_START"]), ews_time(os.environ["PEER_END"])
    with open(os.environ["PEER_ROOMS"], encoding="utf-8") as f:
        rooms = [line.strip() for line in f if line.strip()]
    db = sqlite3.connect(os.environ["PEER_DB"])
    db.execute(SCHEMA)

    config = Configuration(
        service_endpoint=f"{base}/EWS/Exchange.asmx",
        credentials=Credentials(username=os.environ["PEER_USER"], password=os.environ["PEER_PASS"]),
        auth_type=auth,
    )
    for room in rooms:
        account = Account(
            primary_smtp_address=room,
            config=config,
            autodiscover=False,
            access_type=IMPERSONATION,
            default_timezone=UTC,
        )
        rows = [row(room, item) for item in account.calendar.view(start=start, end=end)]
        with db:
            db.executemany(f"INSERT OR REPLACE INTO events VALUES ({','.join('?' * 15)})", rows)

    events = db.execute("SELECT count(*) FROM events").fetchone()[0]
    db.close()
    print(json.dumps({"rooms": len(rooms), "events": events}))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # the bench prints stderr; make the cause one readable line
        print(f"ews peer failed: {e!r}", file=sys.stderr)
        sys.exit(1)
