"""Options of the inference methods: declared once per method, checked by one mechanism.

Each method module declares its options as a pydantic model (a subclass of
:class:`MethodOptions`): the field names are the options, the defaults are the
method's defaults, and the annotations say what values are valid.  :func:`check`
turns the caller's keywords into the full, validated set, with errors in plain
words (``draws must be a positive integer, got 0``; an unknown name lists the
valid ones).  The dispatcher (:func:`bayesrec.inference.fit`) applies a model's
own settings (its spec's ``fit_defaults``) between the method's defaults and the
caller's options.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bayesrec.errors import InputError

__all__ = [
    "DecayFactor",
    "Expect",
    "Fraction",
    "MethodOptions",
    "NonNegativeInt",
    "PositiveFloat",
    "PositiveInt",
    "check",
]


@dataclass(frozen=True)
class Expect:
    """What a valid value is, in words (used in error messages)."""

    text: str


PositiveInt = Annotated[int, Field(gt=0), Expect("a positive integer")]
NonNegativeInt = Annotated[int, Field(ge=0), Expect("a non-negative integer")]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False), Expect("a positive number")]
Fraction = Annotated[float, Field(gt=0, lt=1), Expect("a number in (0, 1)")]
DecayFactor = Annotated[float, Field(gt=0, le=1), Expect("a number in (0, 1]")]


class MethodOptions(BaseModel):
    """Base of every method's options: unknown names and loose types are refused."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _expected(annotation) -> str | None:
    """The words describing valid values of an annotation."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        found = [m.text for m in annotation.__metadata__ if isinstance(m, Expect)]
        return found[0] if found else _expected(typing.get_args(annotation)[0])
    if origin is Literal:
        return f"one of {typing.get_args(annotation)}"
    if annotation is bool:
        return "True or False"
    if origin in (typing.Union, types.UnionType):
        parts = [a for a in typing.get_args(annotation) if a is not type(None)]
        words = [w for w in (_expected(a) for a in parts) if w]
        if words:
            return " or ".join(words) + (" or None" if len(parts) < len(
                typing.get_args(annotation)) else "")
    return None


def _plain(value: Any) -> Any:
    """numpy scalars as Python values (strict validation refuses ``np.int64(3)``)."""
    return value.item() if isinstance(value, np.generic) else value


def check(schema: type[MethodOptions], method: str, options: dict[str, Any]) -> dict[str, Any]:
    """The full options of ``method`` (defaults filled in), validated against ``schema``."""
    fields = schema.model_fields
    unknown = sorted(set(options) - set(fields))
    if unknown:
        raise InputError(
            f"unknown option(s) {unknown} for method {method!r}; valid options are: "
            f"{', '.join(sorted(fields))}"
        )
    try:
        validated = schema(**{k: _plain(v) for k, v in options.items()})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = str(err["loc"][0]) if err["loc"] else "?"
            words = _expected(fields[key].rebuild_annotation()) if key in fields else None
            problem = f"must be {words}" if words else err["msg"]
            problems.append(f"{key} {problem}, got {err.get('input')!r}")
        raise InputError(f"invalid option(s) for method {method!r}: " + "; ".join(
            dict.fromkeys(problems))) from None
    return validated.model_dump()
