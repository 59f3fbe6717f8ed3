"""The fidelity proof for the simulator's EWS: the third-party client exchangelib (PyPI) talks to it
unchanged and must read exactly what /_sim/truth says a room holds.

Run by simulator/tests/ews_exchangelib.rs with these environment variables:
  SIM_BASE   http://127.0.0.1:PORT
  SIM_USER   e.g. CONTOSO\\svc-pump (NTLM) or svc-pump@contoso.com (Basic)
  SIM_PASS   the account's password
  SIM_AUTH   basic | ntlm
  SIM_START, SIM_END   the week to read (RFC 3339, UTC)
  SIM_CHECK_AUTODISCOVER   1 to also run exchangelib's SOAP GetUserSettings

Prints one JSON line with what it saw; exits non-zero on any disagreement.
"""

import datetime
import json
import os
import sys
import urllib.request
from collections import Counter

from exchangelib import (
    BASIC,
    IMPERSONATION,
    NTLM,
    UTC,
    Account,
    Configuration,
    Credentials,
    EWSDateTime,
)
from exchangelib.protocol import Protocol

BASE = os.environ["SIM_BASE"]
EWS_URL = BASE + "/EWS/Exchange.asmx"
AUTH = {"basic": BASIC, "ntlm": NTLM}[os.environ.get("SIM_AUTH", "basic")]


def fail(msg, **extra):
    print(json.dumps({"ok": False, "error": msg, **extra}, default=str))
    sys.exit(1)


def parse(ts):
    return EWSDateTime.from_datetime(datetime.datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone(datetime.timezone.utc)).astimezone(UTC)


def iso(dt):
    dt = dt.astimezone(UTC) if isinstance(dt, EWSDateTime) else dt.astimezone(datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def truth(mailbox, start, end):
    q = f"{BASE}/_sim/truth?mailbox={mailbox}&calendar=Calendar&start={start}&end={end}"
    with urllib.request.urlopen(q) as r:
        return json.load(r)["instances"]


def main():
    creds = Credentials(username=os.environ["SIM_USER"], password=os.environ["SIM_PASS"])
    config = Configuration(service_endpoint=EWS_URL, credentials=creds, auth_type=AUTH)
    protocol = Protocol(config=config)

    # Room lists and rooms.
    lists = list(protocol.get_roomlists())
    if not lists:
        fail("no room lists")
    expected_lists = json.load(urllib.request.urlopen(BASE + "/_sim/roomlists"))["room_lists"]
    if sorted(l.email_address for l in lists) != sorted(l["smtp"] for l in expected_lists):
        fail("room lists differ", got=[l.email_address for l in lists])
    first = lists[0]
    rooms = list(protocol.get_rooms(first.email_address))
    want_rooms = next(l["rooms"] for l in expected_lists if l["smtp"] == first.email_address)
    if sorted(r.email_address for r in rooms) != sorted(want_rooms):
        fail("rooms differ", got=[r.email_address for r in rooms])
    room = rooms[0].email_address

    # One room's calendar for a week, with impersonation.
    account = Account(
        primary_smtp_address=room,
        config=config,
        autodiscover=False,
        access_type=IMPERSONATION,
    )
    start, end = os.environ["SIM_START"], os.environ["SIM_END"]
    got = Counter()
    kinds = Counter()
    for item in account.calendar.view(start=parse(start), end=parse(end)):
        s, e = item.start, item.end
        if item.is_all_day:
            # exchangelib turns all-day items into dates of their StartTimeZone (end inclusive);
            # the truth names the same dates in `all_day_dates` (end exclusive).
            s = datetime.datetime.combine(s, datetime.time(), tzinfo=datetime.timezone.utc)
            e = datetime.datetime.combine(e + datetime.timedelta(days=1), datetime.time(), tzinfo=datetime.timezone.utc)
        got[(item.subject, iso(s), iso(e))] += 1
        kinds[item.type] += 1
        if item.uid is None or item.organizer is None:
            fail("item without UID or organizer", subject=item.subject)
    def want_key(i):
        d = i.get("all_day_dates")
        if d:
            return (i["subject"], d["start"] + "T00:00:00Z", d["end"] + "T00:00:00Z")
        return (i["subject"], i["start"], i["end"])

    want = Counter(want_key(i) for i in truth(room, start, end))
    if got != want:
        fail(
            "calendar view differs from /_sim/truth",
            only_exchangelib=sorted(map(list, (got - want).keys())),
            only_truth=sorted(map(list, (want - got).keys())),
        )
    # SyncFolderItems and indexed paging through exchangelib: every item (single or master) once.
    n_items = account.calendar.all().count()
    creates = Counter(ct for ct, _ in account.calendar.sync_items())
    if creates.get("create", 0) != n_items or set(creates) - {"create"}:
        fail("initial sync_items differs from the folder", creates=dict(creates), items=n_items)
    if list(account.calendar.sync_items()):
        fail("a second sync_items without changes reported changes")
    # A change made through the control API arrives as one create.
    req = urllib.request.Request(
        BASE + "/_sim/events",
        data=json.dumps({"mailbox": room, "subject": "Added by the control API", "start": start, "end": start.replace("T00:", "T01:")}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(req).read()
    later = [(ct, getattr(i, "subject", None)) for ct, i in account.calendar.sync_items()]
    if later != [("create", "Added by the control API")]:
        fail("sync_items after a control-API change", got=later)
    out = {
        "ok": True,
        "folder_items": n_items,
        "auth": os.environ.get("SIM_AUTH", "basic"),
        "room_lists": len(lists),
        "rooms": len(rooms),
        "room": room,
        "instances": sum(got.values()),
        "kinds": dict(kinds),
        "version": protocol.version.api_version,
    }

    if os.environ.get("SIM_CHECK_AUTODISCOVER") == "1":
        from exchangelib.autodiscover.protocol import AutodiscoverProtocol

        ad = AutodiscoverProtocol(
            config=Configuration(
                service_endpoint=BASE + "/autodiscover/autodiscover.svc",
                credentials=creds,
                auth_type=AUTH,
            )
        )
        r = ad.get_user_settings(user=room, settings=["external_ews_url", "internal_ews_url", "user_display_name"])
        if r.ews_url != EWS_URL:
            fail("autodiscover EWS URL differs", got=r.ews_url, settings=r.user_settings)
        out["autodiscover_ews_url"] = r.ews_url
        out["autodiscover_display_name"] = r.user_settings.get("user_display_name")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
