"""``agendo``: the SDK's worked example, in Python — a made-up platform shaped like the
ones authors meet (see docs/connector-guide.md, "A worked example").

An organization (its ``address`` always there, maybe null), its booking reasons (each
with a ``practitioner`` always there, maybe null), and each online reason's free times
asked a week at a time: ``GET …/reasons/{id}/slots?from=YYYY-MM-DD&to=YYYY-MM-DD``
answers a list of times (``day``, ``time`` in the practice's zone, ``minutes``) that
ends with a trailer object (``count``, ``next``). The API key goes in
``Authorization: Agendo key="<key>"``, filled in by the host."""

from datetime import timedelta

import wit_world
from wit_world.imports import types

from passerelle_sdk import Timestamp, Window, connector, emit, get, log, setting

API = "https://api.agendo.example"
ZONE = "Europe/Paris"
TIMES = [("time", ["day", "time", "minutes"]), ("trailer", ["count", "next"])]


def ask(path: str, endpoint: str):
    """A request to the API with the key inside its template."""
    return get(f"{API}{path}").endpoint(endpoint) \
        .secret_template("authorization", 'Agendo key="', "api-key", '"')


@connector
class WitWorld(wit_world.WitWorld):
    def describe(self) -> types.Manifest:
        return types.Manifest(
            name="agendo",
            version="0.1.0",
            platform="Agendo",
            allowed_hosts=[API],
            rate_limit=types.RateLimit(requests_per_second=5, burst=10),
            settings=[types.Parameter("organization", "the organization's id on Agendo", True)],
            secrets=[types.Parameter("api-key", "the practice's Agendo API key", True)],
        )

    def check(self, account: types.Account) -> None:
        setting(account, "organization")

    def sync(self, request: types.SyncRequest) -> types.Summary:
        org = setting(request.account, "organization")
        base = f"/v2/organizations/{org}"
        organization = ask(base, "GET /v2/organizations/{id}").json()
        place = organization["name"].str()
        organization["address"].nullable()  # read: a renamed field is drift, not null
        reasons = ask(f"{base}/reasons", "GET /v2/organizations/{id}/reasons").json()
        online = []
        for reason in reasons.items():
            doctor = reason["practitioner"].nullable()
            if reason["online"].bool():
                online.append((reason["id"].str(), reason["label"].str(),
                               doctor.str() if doctor else None))
        pages = Window.parse(request.window).from_now().days(7, ZONE)
        total = 0
        for reason_id, label, doctor in online:
            for first, last in pages:
                answer = ask(f"{base}/reasons/{reason_id}/slots",
                             "GET /v2/organizations/{id}/reasons/{reason}/slots") \
                    .query("from", first.isoformat()).query("to", last.isoformat()).json()
                slots = []
                for shape, item in answer.union(TIMES):
                    if shape == "trailer":
                        continue
                    day, time = item["day"].str(), item["time"].str()
                    starts = Timestamp.local(day, time, ZONE)
                    if starts is None:  # a time the spring-forward gap skips
                        raise item["time"].drift("a local time that exists")
                    ends = Timestamp(starts.at + timedelta(minutes=item["minutes"].int()))
                    slots.append(emit.slot(f"{reason_id}-{day}T{time}", starts.to_rfc3339(),
                                           ends.to_rfc3339(), practitioner=doctor,
                                           visit_motive=label, place=place))
                emit.slots(slots)
                total += len(slots)
        log.info("agendo: done", slots=total, reasons=len(online), pages=len(pages))
        return types.Summary(cursor=None,
                             message=f"{total} times for {len(online)} online reasons")
