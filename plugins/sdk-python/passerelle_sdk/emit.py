"""Emitting records and checkpoints; a host refusal ends the run ``internal``."""

from typing import Iterable, Optional

from componentize_py_types import Err
from wit_world.imports import records, types

from .errors import Failure


def _call(what, f, *args):
    try:
        return f(*args)
    except Err as e:
        raise Failure.internal(f"{what} refused: {e.value}")


def slot(external_id: str, starts_at: str, ends_at: Optional[str] = None,
         practitioner: Optional[str] = None, visit_motive: Optional[str] = None,
         place: Optional[str] = None) -> types.Slot:
    return types.Slot(external_id, starts_at, ends_at, practitioner, visit_motive, place)


def slots(items: Iterable[types.Slot]) -> None:
    items = list(items)
    if items:
        _call("upsert-slots", records.upsert_slots, items)


def appointments(items: Iterable[types.Appointment]) -> None:
    items = list(items)
    if items:
        _call("upsert-appointments", records.upsert_appointments, items)


def deleted_appointments(external_ids: Iterable[str]) -> None:
    ids = list(external_ids)
    if ids:
        _call("delete-appointments", records.delete_appointments, ids)


def checkpoint(cursor: str) -> None:
    """Commits what was emitted so far with ``cursor``, in one transaction."""
    _call("checkpoint", records.checkpoint, cursor)


def drift_policy() -> types.DriftPolicy:
    """The operator's policy for an item that does not parse: ``FAIL`` (the run ends
    ``schema-drift``) or ``QUARANTINE`` (set it aside with :func:`quarantine`, go on)."""
    return records.on_drift()


def quarantine(failure: Failure, item) -> None:
    """Sets ``item`` (its JSON) aside for the operator's review, with the drift that
    made it unreadable (a ``schema-drift`` :class:`Failure`); kept by the host, never
    logged."""
    import json
    drift = failure.error.value
    _call("quarantine", records.quarantine, types.QuarantinedItem(drift, json.dumps(item)))


def items(reader, read):
    """``read(item)`` for each item of the list at ``reader``; an item it finds drifted
    is quarantined under the operator's ``quarantine`` policy (and skipped), or ends the
    run under ``fail`` (the default)."""
    out, policy = [], None
    for item in reader.items():
        try:
            out.append(read(item))
        except Failure as f:
            if not isinstance(f.error, types.SyncError_SchemaDrift):
                raise
            if policy is None:
                policy = drift_policy()
            if policy != types.DriftPolicy.QUARANTINE:
                raise
            quarantine(f, item.value)
    return out
