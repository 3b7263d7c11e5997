"""Reading a ratings table from a CSV/TSV file, for :meth:`Ratings.from_csv`.

Id columns are read as the exact strings in the file: no number conversion
(``"007"`` and ``"1.0"`` stay as written) and no missing-value markers (``"NA"``,
``"null"`` and ``"None"`` are ids like any other); only an empty field is a
missing id.  ``id_type="int"`` converts them to integers, strictly.  The rating
and timestamp columns are parsed as numbers, with pandas' usual missing-value
markers; timestamps may also be ISO 8601 dates.

Every problem with the file (unreadable, empty, wrong encoding, malformed rows)
raises :class:`~bayesrec.errors.InputError` naming the file and the fix.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from bayesrec.errors import InputError

__all__ = ["IdType", "id_types", "parse_ids", "parse_times", "read_table"]

IdType = Literal["str", "int"]
_ID_TYPES = ("str", "int")
_TAB_SUFFIXES = (".tsv", ".data", ".tab", ".base", ".test")
_SEPARATORS = ("\t", ",", ";", "|")
_SNIFF_BYTES = 1 << 16
# pandas' default missing-value markers, for the rating and timestamp columns only
_NA_STRINGS = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
               "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"]
_INTEGER = re.compile(r"\s*[+-]?[0-9]+\s*")


def id_types(id_type: IdType | Mapping[str, IdType]) -> dict[str, IdType]:
    """``id_type`` as ``{"user": ..., "item": ...}``, checked."""
    given = dict(id_type) if isinstance(id_type, Mapping) else {"user": id_type, "item": id_type}
    out = {"user": given.pop("user", "str"), "item": given.pop("item", "str")}
    if given or any(t not in _ID_TYPES for t in out.values()):
        raise InputError(
            f"id_type must be 'str', 'int' or a dict like {{'user': 'int', 'item': 'str'}}, "
            f"got {id_type!r}"
        )
    return out


def read_table(path: Path, *, sep: str | None, names: Sequence[str] | None,
               id_columns: Sequence[str], number_columns: Sequence[str],
               encoding: str) -> pd.DataFrame:
    """The file as a DataFrame: ids as strings, numbers as numbers, one row per data row."""
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise InputError(f"unknown encoding {encoding!r}; give a Python codec name such as "
                         "'utf-8' or 'latin-1'") from None
    try:
        with path.open("rb") as fh:
            if sep is None:
                sep = _guess_sep(path, fh.read(_SNIFF_BYTES), encoding)
                fh.seek(0)
            table = pd.read_csv(
                fh, sep=sep, names=names, header=0 if names is None else None,
                engine="c" if len(sep) == 1 or sep == r"\s+" else "python", encoding=encoding,
                dtype=dict.fromkeys(id_columns, str), keep_default_na=False,
                na_values=dict.fromkeys(number_columns, _NA_STRINGS),
            )
    except UnicodeDecodeError as exc:
        raise _encoding_error(path, encoding, exc) from None
    except pd.errors.EmptyDataError:
        raise InputError(f"{path} is empty; a ratings file has a header row (user, item, "
                         "rating) and one row per rating") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}; make it readable by this "
                         "user (check its permissions)") from None
    except (ValueError, TypeError, OverflowError, csv.Error, AssertionError) as exc:
        # pandas' python engine (a separator of several characters) fails an internal
        # assert on some malformed files, such as NUL bytes with no separator
        detail = exc if str(exc) else "malformed rows"
        raise InputError(f"could not parse {path} as a ratings table: {detail}") from None
    if not table.index.equals(pd.RangeIndex(len(table))):  # surplus fields became an index
        raise InputError(
            f"rows of {path} have more fields than its header names ({list(table.columns)}); "
            "fix the header (name a first column of row names, as R's write.table leaves it "
            "unnamed, or drop it) or the rows (a separator at the end of each line?)"
        )
    return table


def _guess_sep(path: Path, sample: bytes, encoding: str) -> str:
    """Tab for the extensions of tab-separated files, else the commonest separator of line 1."""
    if path.suffix.lower() in _TAB_SUFFIXES:
        return "\t"
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        text = decoder.decode(sample, final=len(sample) < _SNIFF_BYTES)
    except UnicodeDecodeError as exc:
        raise _encoding_error(path, encoding, exc) from None
    first = text.splitlines()[0] if text else ""
    sep = max(_SEPARATORS, key=first.count)
    return sep if first.count(sep) else r"\s+"


def _encoding_error(path: Path, encoding: str, exc: UnicodeDecodeError) -> InputError:
    bad = exc.object[exc.start:exc.end]
    return InputError(
        f"{path} is not valid {encoding} text (it holds the byte(s) {bad!r}: {exc.reason}); "
        "if the file uses another encoding, pass it, for example encoding='latin-1' or "
        "encoding='cp1252'"
    )


def parse_ids(column: pd.Series, what: str, id_type: IdType, path: Path) -> np.ndarray:
    """The ids of one column: the strings as read, or integers for ``id_type="int"``."""
    values = column.to_numpy(dtype=object)
    empty = np.flatnonzero([not isinstance(v, str) or v == "" for v in values])
    if len(empty):
        raise InputError(
            f"{len(empty)} rating(s) in {path} have no {what} id (an empty field), in data "
            f"row(s) {(empty[:5] + 1).tolist()} (counting from 1 after the header); every "
            f"rating needs a {what} id"
        )
    if id_type == "str":
        return values
    bad = [v for v in values if not _INTEGER.fullmatch(v)]
    if bad:
        raise InputError(
            f"{what} ids in {path} are not all integers, for example {bad[:5]}; read them "
            f"as strings (id_type='str', the default) or fix the file"
        )
    numbers = [int(v) for v in values]
    big = [v for v in numbers if not -(2**63) <= v < 2**63]
    if big:
        raise InputError(f"{what} ids in {path} do not fit in 64 bits, for example {big[:3]}; "
                         "read them as strings (id_type='str', the default)")
    return np.array(numbers, dtype=np.int64)


def parse_times(column: pd.Series, path: Path) -> np.ndarray:
    """Timestamps as numbers, or as datetime64 (UTC) when they are ISO 8601 dates."""
    if column.dtype.kind in "iuf":
        return column.to_numpy()
    try:
        dates = pd.to_datetime(column, format="ISO8601", utc=True)
    except (ValueError, TypeError, OverflowError):
        values = column[column.notna()].unique()[:5].tolist()
        raise InputError(
            f"timestamps in {path} must be numbers (for example Unix seconds) or ISO 8601 "
            f"dates, got values like {values}"
        ) from None
    return dates.dt.tz_convert(None).to_numpy()
