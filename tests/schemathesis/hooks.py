"""Schemathesis hooks for passerelle's admin API: how to generate values of the custom
formats the OpenAPI document uses (the server's own rules for them)."""

import schemathesis
from hypothesis import strategies as st


def _field(low: int, high: int) -> st.SearchStrategy[str]:
    value = st.integers(low, high)
    single = value.map(str)
    span = st.tuples(value, value).map(lambda t: f"{min(t)}-{max(t)}")
    step = st.integers(1, high - low + 1).map(lambda n: f"*/{n}")
    item = st.one_of(st.just("*"), single, span, step)
    listed = st.lists(st.one_of(single, span), min_size=2, max_size=3).map(",".join)
    return st.one_of(item, listed)


# A five-field cron expression: minute hour day-of-month month day-of-week.
schemathesis.openapi.format(
    "cron",
    st.tuples(_field(0, 59), _field(0, 23), _field(1, 28), _field(1, 12), _field(0, 6)).map(
        " ".join
    ),
)


# Uploads are components: bytes that start like WebAssembly, or not at all (the server
# refuses both, with 422 or 400, as documented).
schemathesis.openapi.media_type(
    "application/wasm",
    st.one_of(st.binary(min_size=1, max_size=256), st.binary(max_size=64).map(lambda b: b"\0asm\r\0\1\0" + b)),
)
