"""``maiia`` in Python: the passerelle connector for Maiia, the same work as the Rust
connector (plugins/maiia), on the same cassettes.

Availability only: the centre's consultation reasons (those the public may book, with
``patientLimitation`` ``PUBLIC``), then each reason's free times in the window, page by
page (``…&limit=100&page=N&size=100`` answers ``{"items": […], "total": T}``)."""

import wit_world
from wit_world.imports import types

from passerelle_sdk import Failure, Window, connector, emit, get, log, setting

SITE = "https://www.maiia.com"
REASONS = "GET /api/pat-public/consultation-reason-hcd"
AVAILABILITIES = "GET /api/pat-public/availabilities"
SIZE = 100
MAX_PAGES = 200


def pages(request, each) -> int:
    """Asks every page of ``request(page)``, hands each page's items to ``each``;
    returns the number of requests."""
    seen = 0
    for page in range(MAX_PAGES):
        answer = request(page).query("limit", str(SIZE)).query("page", str(page)) \
            .query("size", str(SIZE)).json()
        items = answer["items"].items()
        total = answer["total"].int()
        each(items)
        seen += len(items)
        if not items or seen >= total:
            return page + 1
    return MAX_PAGES


@connector
class WitWorld(wit_world.WitWorld):
    def describe(self) -> types.Manifest:
        return types.Manifest(
            name="maiia",
            version="0.1.0",
            platform="Maiia",
            allowed_hosts=[SITE],
            rate_limit=types.RateLimit(requests_per_second=3, burst=6),
            settings=[types.Parameter(
                "center",
                "centre id: 24 hexadecimal digits (the `centerId` of Maiia's API, e.g. 5ffc744c68dedf073a5b87a2)",
                True,
            )],
            secrets=[],
        )

    def check(self, account: types.Account) -> None:
        center = setting(account, "center")
        if len(center) != 24 or any(c not in "0123456789abcdefABCDEF" for c in center):
            raise Failure.invalid_config(
                "setting `center` must be Maiia's centre id: 24 hexadecimal digits")

    def sync(self, request: types.SyncRequest) -> types.Summary:
        self.check(request.account)
        # Availability only: asked from the run's clock, never for days already past.
        window = Window.parse(request.window).from_now()
        center = setting(request.account, "center")

        reasons = []

        def read_reasons(items):
            for r in items:
                reasons.append({
                    "id": r["id"].str(),
                    "name": r["name"].str(),
                    "bookable": r["patientLimitation"].str() == "PUBLIC",
                    "physical": r["consultationType"].str() == "PHYSICAL",
                })

        pages(lambda _: get(f"{SITE}/api/pat-public/consultation-reason-hcd")
              .endpoint(REASONS).query("rootCenterId", center), read_reasons)
        bookable = [r for r in reasons if r["bookable"]]
        start, end = window.start.to_utc_millis(), window.end.to_utc_millis()
        found = {"slots": 0, "requests": 0}
        for reason in bookable:
            def read_times(items, reason=reason):
                slots = []
                for a in items:
                    external_id = a["id"].str()
                    practitioner = a["practitionerId"].str()
                    reason_id = a["consultationReasonId"].str()
                    starts = a["startDateTime"].timestamp()
                    ends = a["endDateTime"].timestamp()
                    # The query is by name, which two reasons may share.
                    if reason_id == reason["id"] and window.contains(starts):
                        slots.append(emit.slot(
                            external_id, starts.to_rfc3339(), ends.to_rfc3339(),
                            practitioner=practitioner, visit_motive=reason["name"]))
                found["slots"] += len(slots)
                emit.slots(slots)

            found["requests"] += pages(
                lambda _, reason=reason: get(f"{SITE}/api/pat-public/availabilities")
                .endpoint(AVAILABILITIES)
                .query("centerId", center)
                .query("consultationReasonName", reason["name"])
                .query("from", start)
                .query("to", end),
                read_times,
            )
        message = (f"{found['slots']} bookable times for {len(bookable)} of {len(reasons)} "
                   f"consultation reasons in {found['requests']} availability requests")
        log.info("maiia: done", slots=found["slots"], reasons=len(bookable))
        return types.Summary(cursor=None, message=message)
