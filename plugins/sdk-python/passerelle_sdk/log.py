"""Logging through the host (``log`` import). The host scrubs lines, but never log
patient data on purpose: log ids and counts."""

from wit_world.imports import log as host
from wit_world.imports import types


def write(level: types.Level, message: str, **fields) -> None:
    host.log(level, message, [(k, str(v)) for k, v in fields.items()])


def debug(message: str, **fields) -> None:
    write(types.Level.DEBUG, message, **fields)


def info(message: str, **fields) -> None:
    write(types.Level.INFO, message, **fields)


def warn(message: str, **fields) -> None:
    write(types.Level.WARN, message, **fields)


def error(message: str, **fields) -> None:
    write(types.Level.ERROR, message, **fields)
