"""What the tests share."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import grpc
import pytest

# The deadline of the transfers the tests make (the helpers' unary calls
# carry the client's).
TRANSFER_TIMEOUT = 30.0


@contextlib.contextmanager
def expect_status(code: grpc.StatusCode, *words: str) -> Iterator[None]:
    """Asserts that the block raises grpc.RpcError with `code` and details
    containing each of `words` as a whole word."""
    with pytest.raises(grpc.RpcError) as info:
        yield
    err = info.value
    got = err.code()  # type: ignore[attr-defined]
    details = err.details() or ""  # type: ignore[attr-defined]
    assert got == code, f"expected {code.name}, got {got.name}: {details!r}"
    for word in words:
        assert re.search(rf"\b{re.escape(word)}\b", details), f"{code.name} details should mention {word!r}: {details!r}"
