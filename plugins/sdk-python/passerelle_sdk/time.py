"""Timestamps as platforms send them and as the host stores them.

:class:`Timestamp` reads an RFC 3339 string (fractional seconds optional, offset
required) and keeps its offset; :class:`Window` is a sync request's time window."""

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Optional

from wit_world.imports import clock as host_clock  # at import: nothing loads at run time

from .errors import Failure


@dataclass(frozen=True)
class Timestamp:
    at: datetime

    @staticmethod
    def parse(text: str) -> Optional["Timestamp"]:
        """None unless an RFC 3339 date-time with an offset (``Z`` or ``±hh:mm``)."""
        if not isinstance(text, str) or len(text) < 20 or text[10] not in "Tt":
            return None
        try:
            at = datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            return None
        return Timestamp(at) if at.tzinfo is not None else None

    def to_rfc3339(self) -> str:
        """Seconds precision unless there is a fraction, the offset as ``+00:00``."""
        return self.at.isoformat(timespec="milliseconds" if self.at.microsecond else "seconds")

    def millis(self) -> int:
        return int(self.at.timestamp() * 1000)

    def to_utc_millis(self) -> str:
        """``2021-04-16T12:00:00.000Z``."""
        return self.at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + \
            f"{self.at.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class Window:
    start: Timestamp
    end: Timestamp

    @staticmethod
    def parse(window) -> "Window":
        start, end = Timestamp.parse(window.start), Timestamp.parse(window.end)
        if start is None or end is None:
            raise Failure.internal("the host sent a window that is not RFC 3339")
        return Window(start, end)

    def contains(self, t: Timestamp) -> bool:
        return self.start.at <= t.at < self.end.at

    def from_now(self, at: Optional[Timestamp] = None) -> "Window":
        """The part asked for availability: from the run's clock (:func:`now`, or
        ``at``) to the end. Slots before now are not bookable; the window's past is for
        appointments."""
        at = at if at is not None else now()
        if at is None or at.at <= self.start.at:
            return self
        return Window(at if at.at < self.end.at else self.end, self.end)


def now() -> Optional[Timestamp]:
    """The run's "now" (contract 0.1.3): the real time in a daemon, the cassette's
    recorded instant in ``passerelle connector test``."""
    return Timestamp.parse(host_clock.now())
