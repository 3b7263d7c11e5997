"""Exceptions raised for bad input, and for fits that failed.

Every check on user input raises :class:`InputError` (a :class:`ValueError`), with a
message that names the problem and, where there is one, the fix.  Unknown user or
item ids raise :class:`UnknownIdError`, which is also a :class:`KeyError` so that
``except KeyError`` works as for a dictionary lookup.  A fit that failed on good
input (a variational fit whose loss diverged) raises :class:`FitError`; one that ran
but deserves a look (a collapsed MAP point) warns with :class:`FitWarning`.
"""

from __future__ import annotations

__all__ = ["FitError", "FitWarning", "InputError", "UnknownIdError"]


class InputError(ValueError):
    """Bad input to a bayesrec function: the message says what and how to fix it."""


class FitError(RuntimeError):
    """A fit that failed (for example a variational fit whose loss diverged): the message
    says what was seen and what to try instead.  Raised rather than returning a fit
    whose predictions would be silently wrong."""


class FitWarning(UserWarning):
    """A fit that ran but whose result deserves a look (for example a MAP point whose factor
    matrices collapsed to zero): the message says what was seen and what to try."""


class UnknownIdError(InputError, KeyError):
    """A user or item id that the ratings (or the fit) have never seen."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""
