"""Column names of a user's table, normalised one way for every part of a generated project.

A table's column names become Python identifiers (the data contract, the API's request
model), Feast field names and SQL column names, so each is normalised the same way:

1. Unicode to ASCII: letters lose their accents (``é`` -> ``e``), a few letters without a
   decomposition are spelt out (``ß`` -> ``ss``, ``æ`` -> ``ae``, ``ø`` -> ``o``), other
   characters are dropped;
2. lower case; every run of characters other than letters and digits becomes one ``_``;
   ``_`` at either end is stripped;
3. a name starting with a digit gets the prefix ``c_`` (``2nd score`` -> ``c_2nd_score``);
   a Python keyword gets the suffix ``_`` (``class`` -> ``class_``);
4. a name already taken by an earlier column gets ``_2``, ``_3``, ... (in column order).

A name that is empty after this (a name of symbols only, or in a script without Latin
letters) or longer than :data:`MAX_NAME_LENGTH` characters (PostgreSQL's identifier limit)
is refused: :func:`normalise_columns` raises :class:`DataError` naming the column and the
name it became.
"""

from __future__ import annotations

import keyword
import re
import unicodedata
from collections.abc import Iterable

from ..errors import DataError

__all__ = ["MAX_NAME_LENGTH", "normalise", "normalise_columns", "unique_name"]

MAX_NAME_LENGTH = 63
"""Longest normalised name: PostgreSQL (Feast registry, offline stores) cuts longer ones."""

_SPELT_OUT = str.maketrans(
    {
        "ß": "ss",
        "æ": "ae",
        "Æ": "AE",
        "ø": "o",
        "Ø": "O",
        "œ": "oe",
        "Œ": "OE",
        "ł": "l",
        "Ł": "L",
        "đ": "d",
        "Đ": "D",
        "þ": "th",
        "Þ": "TH",
        "ð": "d",
        "Ð": "D",
    }
)
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def normalise(name: str) -> str:
    """Return ``name`` normalised (steps 1-3 of the module's rules; may return ``""``)."""
    ascii_text = (
        unicodedata.normalize("NFKD", name.translate(_SPELT_OUT))
        .encode("ascii", "ignore")
        .decode("ascii")
    )
    text = _NOT_ALNUM.sub("_", ascii_text.lower()).strip("_")
    if text[:1].isdigit():
        text = f"c_{text}"
    if keyword.iskeyword(text):
        text = f"{text}_"
    return text


def unique_name(base: str, taken: Iterable[str]) -> str:
    """Return ``base``, or ``base_2``, ``base_3``... : the first not in ``taken``."""
    used = set(taken)
    if base not in used:
        return base
    suffix = 2
    while f"{base}_{suffix}" in used:
        suffix += 1
    return f"{base}_{suffix}"


def normalise_columns(names: Iterable[str], source: str) -> list[str]:
    """Return the normalised, unique name of each column name (in order; names may repeat).

    Raises :class:`DataError` for a name that is not a usable identifier after
    normalisation, naming the column of ``source`` and what it became.
    """
    normalised: list[str] = []
    for position, name in enumerate(names, start=1):
        normal = unique_name(normalise(name), normalised)
        if not normal or len(normal) > MAX_NAME_LENGTH:
            why = (
                "has no letter or digit left"
                if not normal
                else f"is longer than {MAX_NAME_LENGTH} characters"
            )
            raise DataError(
                f"{source}: column {position} {name!r} becomes {normal!r} after normalisation, "
                f"which {why}; rename the column"
            )
        normalised.append(normal)
    return normalised
