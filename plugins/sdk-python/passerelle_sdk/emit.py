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
