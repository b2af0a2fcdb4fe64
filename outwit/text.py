"""How a message quotes what a person sent: as Python shows a value, cut to a few dozen characters, so that a 100 KB
id or name never comes back whole."""
from __future__ import annotations

import reprlib

_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 40


def quoted(value: object) -> str:
    """`'abcdefghijklmnopq...vwxyz0123456789'` for a long string; short values as `repr` gives them."""
    return _SHORT.repr(value)
