"""Timestamps as platforms send them and as the host stores them.

:class:`Timestamp` reads an RFC 3339 string (fractional seconds optional, offset
required) and keeps its offset; :class:`Window` is a sync request's time window;
:func:`zone` the time zones of France and its neighbours (no zone database inside a
component: the rules are written here, as in the JavaScript SDK; the Rust SDK uses
chrono-tz), for local times (:meth:`Timestamp.local`) and local days
(:meth:`Window.days`, :func:`today`)."""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import List, Optional, Tuple, Union

from wit_world.imports import clock as host_clock  # at import: nothing loads at run time

from .errors import Failure


#: Zones on Central European time (+01:00, summer +02:00) and Western (+00:00 / +01:00).
_CET = ("Europe/Paris", "Europe/Brussels", "Europe/Luxembourg", "Europe/Monaco",
        "Europe/Berlin", "Europe/Madrid", "Europe/Rome", "Europe/Amsterdam", "Europe/Zurich")
_WET = ("Europe/London", "Europe/Lisbon", "Atlantic/Canary")
#: Zones without summer time: minutes east of UTC.
_FIXED = {"UTC": 0, "Etc/UTC": 0, "Indian/Reunion": 240, "Indian/Mayotte": 180,
          "America/Guadeloupe": -240, "America/Martinique": -240, "America/Cayenne": -180,
          "America/St_Barthelemy": -240, "America/Marigot": -240,
          "Pacific/Noumea": 660, "Pacific/Tahiti": -600, "Pacific/Wallis": 720}


def _last_sunday(year: int, month: int) -> date:
    last = (date(year, month + 1, 1) if month < 12 else date(year + 1, 1, 1)) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() + 1) % 7)


@dataclass(frozen=True)
class Zone:
    """A time zone: its name, its standard offset (minutes east of UTC) and whether it
    keeps European summer time (last Sunday of March to last Sunday of October, 01:00
    UTC)."""
    name: str
    standard: int
    summer: bool

    def offset_at(self, at: datetime) -> int:
        """Minutes east of UTC at the instant ``at``."""
        if not self.summer:
            return self.standard
        utc = at.astimezone(timezone.utc).replace(tzinfo=None)
        start = datetime.combine(_last_sunday(utc.year, 3), time(1))
        end = datetime.combine(_last_sunday(utc.year, 10), time(1))
        return self.standard + (60 if start <= utc < end else 0)


def zone(name: str) -> Zone:
    """The zone named ``name`` (``Europe/Paris``); one the SDK does not know is a bug in
    the connector (``internal``), naming the ones it knows."""
    if name in _CET:
        return Zone(name, 60, True)
    if name in _WET:
        return Zone(name, 0, True)
    if name in _FIXED:
        return Zone(name, _FIXED[name], False)
    known = ", ".join(_CET + _WET + tuple(_FIXED))
    raise Failure.internal(f"time zone `{name}` is not one the SDK knows: {known}")


def _zone(z: Union[str, Zone]) -> Zone:
    return z if isinstance(z, Zone) else zone(z)


def _date(d: Union[str, date]) -> date:
    return d if isinstance(d, date) else date.fromisoformat(d)


def _time(t: Union[str, time]) -> time:
    return t if isinstance(t, time) else time.fromisoformat(t)


@dataclass(frozen=True)
class Timestamp:
    at: datetime

    @staticmethod
    def local(day: Union[str, date], at: Union[str, time], tz: Union[str, Zone]) -> Optional["Timestamp"]:
        """A local time of ``day`` in ``tz`` (platforms that send ``HH:MM`` in the
        practice's zone), with that zone's offset then; None for a time the
        spring-forward gap skips. In the autumn's repeated hour, the first."""
        z, naive = _zone(tz), datetime.combine(_date(day), _time(at))
        for offset in sorted({z.standard, z.standard + (60 if z.summer else 0)}, reverse=True):
            candidate = naive.replace(tzinfo=timezone(timedelta(minutes=offset)))
            if z.offset_at(candidate) == offset:
                return Timestamp(candidate)
        return None

    @staticmethod
    def midnight(day: Union[str, date], tz: Union[str, Zone]) -> "Timestamp":
        """Local midnight of ``day`` in ``tz`` (01:00 where a gap skips midnight)."""
        return Timestamp.local(day, time(0), tz) or Timestamp.local(day, time(1), tz)

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

    def timestamp_millis(self) -> int:
        """Milliseconds since the Unix epoch."""
        return int(round(self.at.timestamp() * 1000))

    def date_in(self, tz: Union[str, Zone]) -> date:
        """The calendar date at this instant in ``tz``."""
        return self.at_offset_minutes(_zone(tz).offset_at(self.at)).at.date()

    def at_offset_minutes(self, minutes: int) -> Optional["Timestamp"]:
        """The same instant shown ``minutes`` east of UTC; None beyond ±24 h."""
        if abs(minutes) >= 24 * 60:
            return None
        return Timestamp(self.at.astimezone(timezone(timedelta(minutes=minutes))))

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

    def days(self, days: int, tz: Union[str, Zone]) -> List[Tuple[date, date]]:
        """The window's local days in ``tz`` in pages of ``days`` days: ``(first,
        last)`` inclusive, from the start's date to the date of the end's last instant
        (an end at midnight does not add its day), the last page cut there."""
        days, z = max(1, days), _zone(tz)
        first = self.start.date_in(z)
        last = Timestamp(self.end.at - timedelta(milliseconds=1)).date_in(z)
        pages, start = [], first
        while start <= last:
            end = min(start + timedelta(days=days - 1), last)
            pages.append((start, end))
            start = end + timedelta(days=1)
        return pages


def today(tz: Union[str, Zone]) -> Optional[date]:
    """The run's date in ``tz`` (platforms that page by local day)."""
    at = now()
    return at.date_in(tz) if at is not None else None


def now() -> Optional[Timestamp]:
    """The run's "now" (contract 0.1.3): the real time in a daemon, the cassette's
    recorded instant in ``passerelle connector test``."""
    return Timestamp.parse(host_clock.now())
