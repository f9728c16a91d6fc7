"""The Python side of the SDK parity test: every scenario of
``plugins/sdk/parity/scenarios.json`` run through this SDK's helper of that name (see
``plugins/sdk/SPEC.md``), its output compared with the scenario's.

Run natively (``python3 plugins/sdk-python/tests/parity.py``; the parity test in
``tests/tests/sdk_parity.rs`` does): the contract's imports, which only a host gives,
are stood in for by plain classes of the same shapes — the helpers tested are the SDK's
own code, none calls the host. Exits non-zero naming each scenario that differs."""

import dataclasses
import enum
import json
import pathlib
import sys
import types as pytypes

HERE = pathlib.Path(__file__).resolve().parent
SCENARIOS = HERE.parent.parent / "sdk" / "parity" / "scenarios.json"


def _record(name, *fields):
    return dataclasses.make_dataclass(name, fields)


def _stand_ins():
    """Modules named as componentize-py names the contract's bindings."""
    t = pytypes.ModuleType("wit_world.imports.types")
    for case in ("Unauthorized", "RateLimited", "Unavailable", "InvalidConfig", "Internal",
                 "SchemaDrift"):
        setattr(t, f"SyncError_{case}", _record(f"SyncError_{case}", "value"))
    for case in ("Denied", "InvalidRequest", "Timeout", "TooLarge", "Connection"):
        setattr(t, f"HttpError_{case}", _record(f"HttpError_{case}", "value"))
    for case in ("Text", "Secret", "SecretWithPrefix"):
        setattr(t, f"HeaderValue_{case}", _record(f"HeaderValue_{case}", "value"))
    t.Drift = _record("Drift", "endpoint", "path", "expected", "found")
    t.Header = _record("Header", "name", "value")
    t.SecretRef = _record("SecretRef", "prefix", "name")
    t.SecretTemplate = _record("SecretTemplate", "header", "before", "secret", "after")
    t.Request = _record("Request", "method", "url", "headers", "body", "timeout_ms")
    t.QuarantinedItem = _record("QuarantinedItem", "drift", "item")
    t.Slot = _record("Slot", "external_id", "starts_at", "ends_at", "practitioner",
                     "visit_motive", "place")
    t.Appointment = _record("Appointment", "fields")
    t.Method = enum.Enum("Method", "GET HEAD POST PUT PATCH DELETE")
    t.Level = enum.Enum("Level", "TRACE DEBUG INFO WARN ERROR")
    t.DriftPolicy = enum.Enum("DriftPolicy", "FAIL QUARANTINE")
    imports = pytypes.ModuleType("wit_world.imports")
    imports.types = t
    for name in ("http", "records", "log", "clock"):
        setattr(imports, name, pytypes.ModuleType(f"wit_world.imports.{name}"))
    world = pytypes.ModuleType("wit_world")
    world.imports = imports
    cpt = pytypes.ModuleType("componentize_py_types")
    cpt.Err = type("Err", (Exception,), {})
    sys.modules.update({
        "wit_world": world, "wit_world.imports": imports, "wit_world.imports.types": t,
        "componentize_py_types": cpt,
        **{f"wit_world.imports.{n}": getattr(imports, n) for n in ("http", "records", "log", "clock")},
    })
    return t


T = _stand_ins()
sys.path.insert(0, str(HERE.parent))
import passerelle_sdk as sdk  # noqa: E402
from passerelle_sdk import http, reader  # noqa: E402
from passerelle_sdk.errors import Failure  # noqa: E402
from passerelle_sdk.time import Timestamp, Window  # noqa: E402

TAGS = {"Unauthorized": "unauthorized", "RateLimited": "rate-limited",
        "Unavailable": "unavailable", "InvalidConfig": "invalid-config", "Internal": "internal"}


def error(f: Failure, want=None):
    name = type(f.error).__name__.removeprefix("SyncError_")
    if name == "SchemaDrift":
        d = f.error.value
        out = {"path": d.path, "expected": d.expected, "found": d.found}
        if not (isinstance(want, dict) and "expected" in want.get("drift", {})):
            del out["expected"]
        return {"drift": out}
    return {"tag": TAGS[name], "val": f.error.value}


def rfc(t):
    return t.to_rfc3339() if t is not None else None


def run(helper, i, want):
    if helper == "timestamp.parse":
        return rfc(Timestamp.parse(i["text"]))
    if helper == "timestamp.local":
        return rfc(Timestamp.local(i["date"], i["time"], i["zone"]))
    if helper == "timestamp.midnight":
        return rfc(Timestamp.midnight(i["date"], i["zone"]))
    if helper == "timestamp.date_in":
        return Timestamp.parse(i["at"]).date_in(i["zone"]).isoformat()
    if helper == "timestamp.at_offset_minutes":
        return rfc(Timestamp.parse(i["at"]).at_offset_minutes(i["minutes"]))
    if helper == "timestamp.to_utc_millis":
        return Timestamp.parse(i["at"]).to_utc_millis()
    if helper == "timestamp.timestamp_millis":
        return Timestamp.parse(i["at"]).timestamp_millis()
    if helper == "window.from_now":
        w = Window(Timestamp.parse(i["start"]), Timestamp.parse(i["end"]))
        at = Timestamp.parse(i["now"]) if i["now"] else None
        f = w.from_now(at) if at else w
        return {"start": rfc(f.start), "end": rfc(f.end)}
    if helper == "window.days":
        w = Window(Timestamp.parse(i["start"]), Timestamp.parse(i["end"]))
        return [[a.isoformat(), b.isoformat()] for a, b in w.days(i["days"], i["zone"])]
    if helper == "http.retry_policy":
        return {"retry_within_run_secs": http.RETRY_WITHIN_RUN_SECS,
                "rate_limit_retries": http.RATE_LIMIT_RETRIES}
    if helper == "http.status_error":
        headers = [("retry-after", i["retry_after"])] if i["retry_after"] else []
        response = pytypes.SimpleNamespace(status=i["status"], headers=headers, body=b"")
        f = http.status_error(i["endpoint"], response)
        return error(f) if f is not None else None
    if helper == "http.request":
        r = {"get": http.get, "post": http.post}[i["method"]](i["url"])
        for step in i["steps"]:
            r = getattr(r, step[0])(*step[1:])
        headers = []
        for h in r.headers:
            kind = type(h.value).__name__.removeprefix("HeaderValue_")
            if kind == "Text":
                headers.append([h.name, "text", h.value.value])
            elif kind == "Secret":
                headers.append([h.name, "secret", h.value.value])
            else:
                headers.append([h.name, "prefix", h.value.value.prefix, h.value.value.name])
        return {"url": r.full_url(), "endpoint": r.endpoint_name(), "headers": headers,
                "templated": [[t.header, t.before, t.secret, t.after] for t in r.templated]}
    if helper.startswith("account."):
        account = pytypes.SimpleNamespace(
            settings=[pytypes.SimpleNamespace(key=k, value=v) for k, v in i["settings"]],
            secrets=i["secrets"])
        f = {"account.setting": sdk.setting, "account.setting_opt": sdk.setting_opt,
             "account.has_secret": sdk.has_secret}[helper]
        try:
            return f(account, i["key"])
        except Failure as e:
            return error(e)
    if helper == "drift.kind":
        return reader.kind(i["value"] if "value" in i else reader._MISSING)
    if helper == "drift.nullable":
        try:
            v = reader.Reader("GET /x", i["json"])[i["field"]].nullable()
            return {"value": v.str() if v is not None else None}
        except Failure as f:
            return error(f, want)
    if helper == "drift.union":
        try:
            found = reader.Reader("GET /x", i["json"]).union(i["shapes"])
            return {"shapes": [name for name, _ in found]}
        except Failure as f:
            return error(f, want)
    if helper == "drift.path":
        try:
            at = reader.Reader("GET /x", i["json"])
            for key in i["keys"]:
                at = at.items()[key] if isinstance(key, int) else at[key]
            {"string": at.str}[i["expect"]]()
            return "read"
        except Failure as f:
            return error(f, want)
    raise SystemExit(f"the Python SDK has no helper for scenario `{helper}`")


def main():
    scenarios = json.loads(SCENARIOS.read_text())["scenarios"]
    failed = []
    for s in scenarios:
        got = run(s["helper"], s["in"], s["out"])
        if got != s["out"]:
            failed.append(f"{s['helper']} {json.dumps(s['in'])}: got {json.dumps(got)}, want {json.dumps(s['out'])}")
    if failed:
        print(f"python: {len(failed)} of {len(scenarios)} scenarios differ:", *failed, sep="\n")
        sys.exit(1)
    print(f"python: {len(scenarios)} scenarios as the other SDKs")


if __name__ == "__main__":
    assert sdk.zone("Europe/Paris")  # the package imports whole
    main()
