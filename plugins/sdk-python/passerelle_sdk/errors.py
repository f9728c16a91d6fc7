"""Why a run ends: :class:`Failure` carries a WIT ``sync-error``; :func:`connector`
wraps a connector class so that a Failure (or any other exception: ``internal``)
becomes the export's error result."""

import traceback

from componentize_py_types import Err
from wit_world.imports import types


class Failure(Exception):
    """Ends the run with ``error`` (a ``types.SyncError_*`` value)."""

    def __init__(self, error):
        super().__init__(type(error).__name__)
        self.error = error

    @staticmethod
    def unauthorized(why: str) -> "Failure":
        return Failure(types.SyncError_Unauthorized(why))

    @staticmethod
    def rate_limited(retry_after_secs) -> "Failure":
        return Failure(types.SyncError_RateLimited(retry_after_secs))

    @staticmethod
    def unavailable(why: str) -> "Failure":
        return Failure(types.SyncError_Unavailable(why))

    @staticmethod
    def invalid_config(why: str) -> "Failure":
        return Failure(types.SyncError_InvalidConfig(why))

    @staticmethod
    def internal(why: str) -> "Failure":
        return Failure(types.SyncError_Internal(why))

    @staticmethod
    def drift(endpoint: str, path: str, expected: str, found: str) -> "Failure":
        """A ``schema-drift``: ``found`` names the JSON kind seen, never the value."""
        return Failure(types.SyncError_SchemaDrift(types.Drift(endpoint, path, expected, found)))


def _guard(call):
    try:
        return call()
    except Failure as f:
        raise Err(f.error)
    except Err:
        raise
    except Exception as e:  # a bug in the connector: internal, with where, not what
        where = traceback.extract_tb(e.__traceback__)[-1]
        raise Err(types.SyncError_Internal(
            f"{type(e).__name__} at {where.filename.rsplit('/', 1)[-1]}:{where.lineno}"))


def connector(cls):
    """Makes a class with ``describe()``, ``check(account)`` and ``sync(request)`` the
    component's exports (``WitWorld``), turning failures into ``sync-error`` results."""

    class Exported(cls):
        def check(self, account):
            return _guard(lambda: cls.check(self, account))

        def sync(self, request):
            return _guard(lambda: cls.sync(self, request))

    return Exported
