"""An account's settings and secrets, with ``invalid-config`` errors that name the
setting (as the Rust SDK's ``AccountExt``)."""

from typing import Optional

from .errors import Failure


def setting_opt(account, key: str) -> Optional[str]:
    """The value of an optional setting."""
    for s in account.settings:
        if s.key == key:
            return s.value
    return None


def setting(account, key: str) -> str:
    """The value of a required setting, or ``invalid-config`` naming it."""
    value = setting_opt(account, key)
    if value is None:
        raise Failure.invalid_config(f"setting `{key}` is required")
    return value


def has_secret(account, name: str) -> bool:
    """Whether the account has a secret of this name configured."""
    return name in account.secrets
