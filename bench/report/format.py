"""Numbers as the report's tables and the console show them: one formatter for both."""

from __future__ import annotations

from typing import Any

__all__ = ["format_number"]


def format_number(value: Any, digits: int = 3) -> str:
    """A table cell for ``value``.

    ``None`` is ``-``; whole numbers get thousands separators (``24,000``); fractions get
    ``digits`` decimals below 1000 (``0.910``) and are rounded to a whole number with
    separators from 1000 on (``6,773``), where more digits would only be noise. Anything
    else (text, booleans) is shown as it is.
    """
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.{digits}f}"
    return str(value)
