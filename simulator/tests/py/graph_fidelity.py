"""A Graph client that is not ours: plain `requests`, following the documented protocol.

Gets a client-credentials token from the simulator's token endpoint, pages through
calendarView (following @odata.nextLink) and calendarView/delta (following @odata.nextLink,
then @odata.deltaLink) of one room, and compares what it got with /_sim/truth.
Docs followed: user-list-calendarview.md, concepts/delta-query-events.md, concepts/paging.md.

Usage: graph_fidelity.py BASE_URL TENANT CLIENT_ID CLIENT_SECRET ROOM START END
Prints "OK <n> instances" and exits 0 when everything matches; prints the differences and
exits 1 otherwise.
"""
import sys

import requests


def main():
    base, tenant, client_id, secret, room, start, end = sys.argv[1:8]
    s = requests.Session()
    tok = s.post(
        f"{base}/{tenant}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
            "scope": "https://graph.microsoft.com/.default",
        },
        timeout=30,
    )
    tok.raise_for_status()
    s.headers["Authorization"] = "Bearer " + tok.json()["access_token"]
    problems = []

    # calendarView, paged.
    url = f"{base}/v1.0/users/{room}/calendarView"
    params = {"startDateTime": start, "endDateTime": end, "$select": "subject,start,end,type,iCalUId,isAllDay"}
    view, pages = [], 0
    while url:
        r = s.get(url, params=params, headers={"Prefer": 'odata.maxpagesize=9, outlook.timezone="UTC"'}, timeout=30)
        r.raise_for_status()
        body = r.json()
        view.extend(body["value"])
        url, params, pages = body.get("@odata.nextLink"), None, pages + 1

    # calendarView/delta, first round.
    url = f"{base}/v1.0/users/{room}/calendarView/delta"
    params = {"startDateTime": start, "endDateTime": end}
    delta_items, delta_link = [], None
    while url:
        r = s.get(url, params=params, headers={"Prefer": "odata.maxpagesize=7"}, timeout=30)
        r.raise_for_status()
        body = r.json()
        delta_items.extend(body["value"])
        params = None
        url = body.get("@odata.nextLink")
        delta_link = body.get("@odata.deltaLink")
    if not delta_link:
        problems.append("delta round ended without @odata.deltaLink")

    truth = s.get(f"{base}/_sim/truth", params={"mailbox": room, "calendar": "Calendar", "start": start, "end": end}, timeout=30).json()["instances"]

    def key_t(i):
        return (i["graph_id"], i["start"].replace("Z", ""), i["subject"])

    def key_v(e):
        return (e["id"], e["start"]["dateTime"].split(".")[0], e["subject"])

    want = sorted(key_t(i) for i in truth)
    got = sorted(key_v(e) for e in view)
    # All-day events are floating: compare their date only.
    def norm(k):
        return (k[0], k[1][:10] if k[1].endswith("T00:00:00") else k[1][:19], k[2])
    if [norm(k) for k in want] != [norm(k) for k in got]:
        problems.append(f"calendarView differs from truth: {len(got)} vs {len(want)}")
        for a, b in zip(want, got):
            if norm(a) != norm(b):
                problems.append(f"  first difference: truth {a} view {b}")
                break

    # Delta: series masters carry the subject; occurrences only id/type/seriesMasterId/start/end.
    masters = {e["id"]: e for e in delta_items if e.get("type") == "seriesMaster"}
    delta_keys = []
    for e in delta_items:
        if e.get("type") == "seriesMaster":
            continue
        if e.get("type") == "occurrence":
            extra = set(e) - {"@odata.type", "@odata.etag", "id", "type", "seriesMasterId", "start", "end"}
            if extra:
                problems.append(f"occurrence in delta has extra properties {sorted(extra)}")
            subject = masters[e["seriesMasterId"]]["subject"]
        else:
            subject = e["subject"]
        delta_keys.append((e["id"], e["start"]["dateTime"].split(".")[0], subject))
    if sorted(norm(k) for k in delta_keys) != [norm(k) for k in want]:
        problems.append(f"delta differs from truth: {len(delta_keys)} vs {len(want)}")

    # The next round is empty when nothing changed.
    if delta_link:
        r = s.get(delta_link, timeout=30)
        r.raise_for_status()
        if r.json()["value"]:
            problems.append(f"second delta round not empty: {r.json()['value'][:2]}")

    if problems:
        print("\n".join(problems))
        return 1
    print(f"OK {len(want)} instances, {pages} calendarView pages, {len(delta_items)} delta items")
    return 0


if __name__ == "__main__":
    sys.exit(main())
