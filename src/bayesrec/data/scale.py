"""Rating scales: the ordered set of values a rating may take."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from bayesrec.errors import InputError

__all__ = ["RatingScale"]

_TOL = 1e-9


@dataclass(frozen=True)
class RatingScale:
    """The values a rating may take.

    A scale is either *discrete* (an ordered tuple of levels such as 1..5 or the
    half stars 0.5..5.0) or *continuous* (any value in ``[low, high]``).  Models
    that treat ratings as categories (MMSBM) need a discrete scale; Gaussian
    models only use ``low`` and ``high`` (to clip point predictions and, for the
    logistic link, to map onto the scale).

    Build one with :meth:`integers`, :meth:`stars`, :meth:`from_levels`,
    :meth:`interval`, or let :meth:`infer` guess it from data.
    """

    levels: tuple[float, ...] | None
    low: float
    high: float

    def __post_init__(self) -> None:
        if self.levels is not None:
            levels = tuple(float(v) for v in self.levels)
            if len(levels) < 2:
                raise InputError(f"a rating scale needs at least two levels, got {levels}")
            if not all(np.isfinite(levels)):
                raise InputError(f"rating scale levels must be finite, got {levels}")
            if any(b <= a for a, b in zip(levels, levels[1:], strict=False)):
                raise InputError(f"rating scale levels must be strictly increasing, got {levels}")
            object.__setattr__(self, "levels", levels)
            object.__setattr__(self, "low", levels[0])
            object.__setattr__(self, "high", levels[-1])
        elif not (np.isfinite(self.low) and np.isfinite(self.high) and self.low < self.high):
            raise InputError(
                f"a continuous rating scale needs finite low < high, got [{self.low}, {self.high}]"
            )
        object.__setattr__(self, "low", float(self.low))
        object.__setattr__(self, "high", float(self.high))

    # -- constructors -------------------------------------------------------------------------
    @classmethod
    def from_levels(cls, levels: Iterable[float]) -> RatingScale:
        """A discrete scale with the given levels (sorted for you)."""
        values = sorted(float(v) for v in levels)
        if len(values) < 2:
            raise InputError(f"a rating scale needs at least two levels, got {values}")
        return cls(levels=tuple(values), low=values[0], high=values[-1])

    @classmethod
    def integers(cls, low: int = 1, high: int = 5) -> RatingScale:
        """The integer scale ``low, low+1, ..., high`` (MovieLens: 1..5)."""
        if int(low) != low or int(high) != high or high <= low:
            raise InputError(f"integers() needs integer low < high, got {low}, {high}")
        return cls.from_levels(range(int(low), int(high) + 1))

    @classmethod
    def stars(cls, low: float = 0.5, high: float = 5.0, step: float = 0.5) -> RatingScale:
        """An evenly stepped scale, for example half stars 0.5, 1.0, ..., 5.0."""
        if step <= 0 or high <= low:
            raise InputError(f"stars() needs low < high and step > 0, got {low}, {high}, {step}")
        n = round((high - low) / step)
        if abs(low + n * step - high) > 1e-6:
            raise InputError(f"({high} - {low}) is not a multiple of the step {step}")
        return cls.from_levels(np.round(low + step * np.arange(n + 1), 10))

    @classmethod
    def interval(cls, low: float, high: float) -> RatingScale:
        """A continuous scale: any value in ``[low, high]``."""
        return cls(levels=None, low=float(low), high=float(high))

    @classmethod
    def infer(cls, values: np.ndarray) -> RatingScale:
        """Guess the scale from observed ratings.

        All integers: ``min..max`` in steps of one.  All multiples of one half: half
        steps from min to max.  Otherwise the distinct observed values, when there
        are at most 20 of them, else a continuous interval ``[min, max]``.  Declare
        the scale explicitly when the data may miss an end of it.
        """
        values = np.asarray(values, dtype=float)
        lo, hi = float(values.min()), float(values.max())
        if lo == hi:
            raise InputError(
                f"cannot infer a rating scale: every rating equals {lo}; pass scale= explicitly"
            )
        if np.all(values == np.round(values)):
            return cls.integers(int(lo), int(hi))
        if np.all(2 * values == np.round(2 * values)):
            return cls.stars(lo, hi, 0.5)
        distinct = np.unique(values)
        if len(distinct) <= 20:
            return cls.from_levels(distinct)
        return cls.interval(lo, hi)

    @classmethod
    def coerce(cls, scale: RatingScale | Iterable[float] | tuple[float, float] | None,
               values: np.ndarray | None = None) -> RatingScale:
        """Turn a user's ``scale=`` argument into a scale.

        Accepts a :class:`RatingScale`, a sequence of levels, the string
        ``"1-5"``-style shorthand ``"low-high"`` for integers, or ``None`` (infer
        from ``values``).
        """
        if isinstance(scale, RatingScale):
            return scale
        if scale is None:
            if values is None or len(values) == 0:
                raise InputError("cannot infer a rating scale from no ratings; pass scale=")
            return cls.infer(values)
        if isinstance(scale, str):
            try:
                lo, hi = (float(s) for s in scale.split("-"))
            except ValueError:
                raise InputError(
                    f"scale string must look like '1-5', got {scale!r}"
                ) from None
            if not (lo.is_integer() and hi.is_integer() and lo < hi):
                raise InputError(
                    f"scale string {scale!r} must name integer ends low < high, like '1-5'; "
                    "for other scales pass RatingScale.stars(...) or a list of levels"
                )
            return cls.integers(int(lo), int(hi))
        try:
            return cls.from_levels(scale)
        except TypeError:
            raise InputError(
                f"scale must be a RatingScale, a list of levels, a string like '1-5' or None, "
                f"got {scale!r}"
            ) from None

    # -- queries ------------------------------------------------------------------------------
    @property
    def is_discrete(self) -> bool:
        return self.levels is not None

    @property
    def n_levels(self) -> int:
        self._require_discrete("n_levels")
        return len(self.levels)

    @property
    def width(self) -> float:
        return self.high - self.low

    def contains(self, values: np.ndarray) -> np.ndarray:
        """Boolean mask: which values lie on the scale."""
        values = np.asarray(values, dtype=float)
        if self.levels is None:
            return (values >= self.low - _TOL) & (values <= self.high + _TOL)
        levels = np.asarray(self.levels)
        pos = np.clip(np.searchsorted(levels, values), 0, len(levels) - 1)
        prev = np.clip(pos - 1, 0, len(levels) - 1)
        return (np.abs(levels[pos] - values) <= _TOL) | (np.abs(levels[prev] - values) <= _TOL)

    def codes(self, values: np.ndarray) -> np.ndarray:
        """Level index (0..n_levels-1) of each value; raises for values off the scale."""
        self._require_discrete("codes")
        values = np.asarray(values, dtype=float)
        bad = ~self.contains(values)
        if bad.any():
            raise InputError(
                f"{int(bad.sum())} rating(s) are off the scale {self}: for example "
                f"{values[bad][:5].tolist()}"
            )
        return self.nearest_codes(values)

    def nearest_codes(self, values: np.ndarray) -> np.ndarray:
        """Index of the nearest level to each value (values need not be on the scale)."""
        self._require_discrete("nearest_codes")
        levels = np.asarray(self.levels)
        values = np.asarray(values, dtype=float)
        pos = np.clip(np.searchsorted(levels, values), 1, len(levels) - 1)
        left = levels[pos - 1]
        right = levels[pos]
        return np.where(values - left <= right - values, pos - 1, pos).astype(np.int64)

    def snap(self, values: np.ndarray) -> np.ndarray:
        """Round each value to the nearest level (discrete) or clip it (continuous)."""
        if self.levels is None:
            return self.clip(values)
        return np.asarray(self.levels)[self.nearest_codes(values)]

    @property
    def edges(self) -> np.ndarray:
        """The boundaries between adjacent levels (their midpoints): a continuous rating
        ``r`` is read as level ``k`` when ``edges[k-1] < r <= edges[k]`` (the first and
        last levels extend to -inf and +inf).  Level probabilities of a continuous
        predictive are its mass on these intervals (what ``snap`` rounds to, up to ties)."""
        self._require_discrete("edges")
        levels = np.asarray(self.levels, dtype=float)
        return (levels[:-1] + levels[1:]) / 2

    def clip(self, values: np.ndarray) -> np.ndarray:
        """Clip values into ``[low, high]``."""
        return np.clip(np.asarray(values, dtype=float), self.low, self.high)

    def values_of(self, codes: np.ndarray) -> np.ndarray:
        """Level values of level indices."""
        self._require_discrete("values_of")
        return np.asarray(self.levels)[np.asarray(codes, dtype=np.int64)]

    # -- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"levels": list(self.levels) if self.levels is not None else None,
                "low": self.low, "high": self.high}

    @classmethod
    def from_dict(cls, d: dict) -> RatingScale:
        if d.get("levels") is not None:
            return cls.from_levels(d["levels"])
        return cls.interval(d["low"], d["high"])

    def __str__(self) -> str:
        if self.levels is None:
            return f"[{self.low:g}, {self.high:g}]"
        if len(self.levels) <= 6:
            return "{" + ", ".join(f"{v:g}" for v in self.levels) + "}"
        return "{" + f"{self.levels[0]:g}, {self.levels[1]:g}, ..., {self.levels[-1]:g}" + "}"

    def _require_discrete(self, what: str) -> None:
        if self.levels is None:
            raise InputError(
                f"{what} needs a discrete rating scale, but this one is continuous {self}; "
                "declare the levels, e.g. RatingScale.integers(1, 5)"
            )
