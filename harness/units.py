"""Human units for sweep axes: context lengths like 4k, 64K, 1m (binary: 1k = 1024 tokens)."""

from __future__ import annotations

import re

_SUFFIX = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_LENGTH = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]?)\s*$", re.IGNORECASE)


class UnitError(ValueError):
    pass


def parse_length(value: object, field: str = "length") -> int:
    """'4k' -> 4096, '1m' -> 1048576, 512 -> 512. Raises UnitError naming `field`."""
    if isinstance(value, bool):
        raise UnitError(f"{field}: {value!r} is not a length")
    if isinstance(value, int):
        n = value
    else:
        match = _LENGTH.match(str(value))
        if not match:
            raise UnitError(
                f"{field}: {value!r} is not a length; use an integer or a number with a "
                f"k/m/g suffix (binary: 1k = 1024), e.g. 4k, 64k, 1m"
            )
        n = float(match.group(1)) * _SUFFIX[match.group(2).lower()]
        if n != int(n):
            raise UnitError(f"{field}: {value!r} is not a whole number of tokens")
        n = int(n)
    if n <= 0:
        raise UnitError(f"{field}: {value!r} must be positive")
    return n


def parse_count(value: object, field: str) -> int:
    """A positive integer (batch sizes); accepts '8' and 8, rejects 0, -1, 2.5 and 'x'."""
    if isinstance(value, bool) or not re.fullmatch(r"\s*-?\d+\s*", str(value)):
        raise UnitError(f"{field}: {value!r} is not an integer")
    n = int(value)
    if n <= 0:
        raise UnitError(f"{field}: {value!r} must be a positive integer")
    return n


def format_length(n: int) -> str:
    """4096 -> '4K', 1048576 -> '1M', 1000 -> '1000'."""
    for suffix, scale in (("G", 1024**3), ("M", 1024**2), ("K", 1024)):
        if n >= scale and n % scale == 0:
            return f"{n // scale}{suffix}"
    return str(n)


def format_bytes(n: float | None) -> str:
    if n is None:
        return "-"
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n:.0f} B"
