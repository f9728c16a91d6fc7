"""The passerelle connector SDK for Python (componentize-py, contract 0.1.3).

A connector is a class with ``describe``, ``check`` and ``sync`` (see
``examples/maiia-python``); this package gives it what the Rust SDK gives Rust
connectors:

- :mod:`.errors`: :class:`Failure`, raised anywhere, ends the run with a ``sync-error``
  (``unauthorized``, ``rate-limited``, ``unavailable``, ``invalid-config``,
  ``internal``, ``schema-drift``); :func:`connector` turns it into the WIT result;
- :mod:`.http`: a request builder naming the endpoint; statuses mapped the host's way;
- :mod:`.reader`: JSON read field by field, a wrong shape reported as ``schema-drift``
  with the endpoint and the JSON path (``$.items[0].startDateTime``), never the value;
- :mod:`.emit`: records and checkpoints; :mod:`.log`: logging through the host;
- :mod:`.time`: RFC 3339 timestamps (offset kept), the sync window, the run's clock
  (:func:`now`, :func:`today`; :meth:`Window.from_now` for availability), time zones
  (:func:`zone`), local times (:meth:`Timestamp.local`) and pages of local days
  (:meth:`Window.days`).

The helpers and their names in the Rust and JavaScript SDKs: ``plugins/sdk/SPEC.md``.
"""

from .account import has_secret, setting, setting_opt  # noqa: F401
from .errors import Failure, connector  # noqa: F401
from .http import get, post, encode, status_error, Request  # noqa: F401
from .reader import Reader, parse  # noqa: F401
from .time import Timestamp, Window, Zone, now, today, zone  # noqa: F401
from . import emit, log  # noqa: F401
