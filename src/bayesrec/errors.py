"""Exceptions raised for bad input.

Every check on user input raises :class:`InputError` (a :class:`ValueError`), with a
message that names the problem and, where there is one, the fix.  Unknown user or
item ids raise :class:`UnknownIdError`, which is also a :class:`KeyError` so that
``except KeyError`` works as for a dictionary lookup.
"""

from __future__ import annotations

__all__ = ["InputError", "UnknownIdError"]


class InputError(ValueError):
    """Bad input to a bayesrec function: the message says what and how to fix it."""


class UnknownIdError(InputError, KeyError):
    """A user or item id that the ratings (or the fit) have never seen."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""
