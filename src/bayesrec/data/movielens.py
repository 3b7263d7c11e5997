"""The MovieLens 100K data set (GroupLens): loader, canonical folds and download.

MovieLens is never shipped with bayesrec (its licence forbids redistribution).
The loader looks in a *data home*, resolved like scikit-learn's: the
``data_home`` argument, else the ``BAYESREC_DATA`` environment variable, else the
user cache folder (``platformdirs.user_cache_dir("bayesrec")``).  The data home
may hold the extracted folder ``ml-100k/`` or the archive ``ml-100k.zip`` (read
in place, no extraction), or may itself be the ``ml-100k`` folder.

Local copies are not trusted: every file the loader reads is checked against the
size and SHA-256 of the genuine file (``ML100K_FILES``) as it is read, and a
damaged or modified file raises :class:`~bayesrec.errors.InputError` naming it.
``verify=False`` skips that check, for a copy changed on purpose; the files are
then only parsed, strictly.  An archive is read only through its expected member
names (``ml-100k/u.data`` or ``u.data``): members with unsafe paths (``../``),
or one of our files twice or in another folder, are refused either way.

``download=True`` fetches the archive from GroupLens when it is not found
locally: at most ``DOWNLOAD_MAX_BYTES`` bytes within ``DOWNLOAD_DEADLINE``
seconds, kept only when its SHA-256 matches.

F. Maxwell Harper and Joseph A. Konstan. 2015. The MovieLens Datasets: History and
Context. ACM Transactions on Interactive Intelligent Systems 5(4): 19.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import platformdirs

from bayesrec.data._download import download_verified
from bayesrec.data._files import LocalSource, is_file
from bayesrec.data.ratings import Ratings
from bayesrec.data.scale import RatingScale
from bayesrec.data.splits import Split
from bayesrec.errors import InputError, UnknownIdError

__all__ = [
    "GROUPLENS_URL",
    "ML100K_SHA256",
    "ML100K_FILES",
    "ML100K_COUNTS",
    "FOLD_NAMES",
    "get_data_home",
    "download_movielens",
    "load_movielens",
    "load_movielens_fold",
    "movielens_folds",
]

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
# SHA-256 of ml-100k.zip (4924029 bytes) as recorded by tensorflow_datasets
# (tensorflow_datasets/url_checksums/movielens.txt); its MD5 is 0e33842e24a9c977be4e0107933c0723.
ML100K_SHA256 = "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229"
ML100K_BYTES = 4_924_029
# size in bytes and SHA-256 of each file the loader reads, from the GroupLens copy
ML100K_FILES: dict[str, tuple[int, str]] = {
    "u.data": (1_979_173, "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"),
    "u.item": (236_344, "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701"),
    "u.user": (22_628, "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c"),
    "u.genre": (202, "9757e0d3e6b298159a80dd48eaf938114690e911e39af97a76949ef1663610bb"),
    "u1.base": (1_586_544, "ce253ec86c448b44fb3ba9a30d12dcfc2e9210cbde71efada3730c22e9ac212a"),
    "u1.test": (392_629, "18c6014a4b2c7324f250a63f8904a7b16b2b19f911129e346141507b0cbac950"),
    "u2.base": (1_583_948, "6c06f0b5df4b256da1a994f3ac66edc8da4d3f09bc9282df6b14d893366d703e"),
    "u2.test": (395_225, "4de658d1e04ed9104629509a2e2528fce833ac8e048280183f1df167632038c3"),
    "u3.base": (1_582_546, "afdc155c291c6edc41c0407e39d7462eb98d341e064f0b0a12175b80b3c4af5d"),
    "u3.test": (396_627, "0f548b51c78327de4c156461d3e430b7e5579fe2b5681586a59416e48fd35f6d"),
    "u4.base": (1_581_878, "219f0f4d40dfe9c5141d425f53fa91ee23ed275f14e280bbf1b50117afb064ca"),
    "u4.test": (397_295, "7c02ad0a1e7ab1083c8b9d4b627203a051dd7b5eab46d99fa44de33470de8db9"),
    "u5.base": (1_581_776, "a9574e59ce961eec2121627760b6e9b0974ce1637b3fe69ac32cb14a4bfab485"),
    "u5.test": (397_397, "351cc52e0d15b6c721466276fc24671d40936899e3d01fadeaf312915b8c5634"),
    "ua.base": (1_792_501, "67b5bcdb380c29f85d56a012ecd88612ae020f30a6730d117a334ee8203b91f2"),
    "ua.test": (186_672, "d0497e202417720f57a184ec8c66be2d1afa4ff41bb53787c57b28d6bf79bc42"),
    "ub.base": (1_792_476, "237254d253b6ad7de84f919d041055428646254f34ed8f562703c899430cd881"),
    "ub.test": (186_697, "d54a72d05730d5892062734b2bec73e976f9b713d18c828a18b968d6cce442da"),
}
# as published in u.info
ML100K_COUNTS = {"ratings": 100_000, "users": 943, "items": 1_682}
# limits of download_movielens: a little above the archive's size, and five minutes
DOWNLOAD_MAX_BYTES = 5_500_000
DOWNLOAD_DEADLINE = 300.0
DATA_ENV = "BAYESREC_DATA"
FOLD_NAMES = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")
_FOLDER = "ml-100k"
_ARCHIVE = "ml-100k.zip"
_VARIANTS = ("100k",)
_LABEL = "MovieLens 100K"
_REMEDY = (
    "Delete {target} and load again with download=True to fetch a verified copy (or put a "
    "good copy there by hand); pass verify=False only to load a copy you changed on purpose."
)
_REMEDY_UNVERIFIED = (
    "This copy was read with verify=False: fix the file, or delete {target} and load again "
    "with download=True to fetch a verified copy."
)
GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)


# ----------------------------------------------------------------------------------------------
# where the files are
# ----------------------------------------------------------------------------------------------
def get_data_home(data_home: str | os.PathLike | None = None) -> Path:
    """The folder that holds (or will hold) downloaded data sets.

    The ``data_home`` argument if given, else the ``BAYESREC_DATA`` environment
    variable if set, else ``platformdirs.user_cache_dir("bayesrec")``.  The folder
    is not created here.
    """
    if data_home is None:
        data_home = os.environ.get(DATA_ENV) or platformdirs.user_cache_dir("bayesrec")
    return Path(data_home).expanduser()


def _source(path: Path, verify: bool) -> LocalSource:
    return LocalSource(path, names=ML100K_FILES, checksums=ML100K_FILES if verify else None,
                       label=_LABEL, folder=_FOLDER,
                       remedy=_REMEDY if verify else _REMEDY_UNVERIFIED)


def _locate(home: Path, verify: bool) -> LocalSource | None:
    """The MovieLens folder or archive in (or at) ``home``, or None."""
    for folder in (home / _FOLDER, home):
        if is_file(folder / "u.data"):
            return _source(folder, verify)
    for archive in (home / _ARCHIVE, home):
        if is_file(archive):
            return _source(archive, verify)
    return None


def _find(data_home, download: bool, verify: bool) -> LocalSource:
    home = get_data_home(data_home)
    source = _locate(home, verify)
    if source is None and download:
        download_movielens(home)
        source = _locate(home, verify)
    if source is None:
        raise InputError(
            f"MovieLens 100K not found in {home}. Put the extracted folder {_FOLDER}/ "
            f"(u.data, u.item, u.user, u1.base, ...) or the archive {_ARCHIVE} there, or point "
            f"the {DATA_ENV} environment variable (or data_home=) at the folder that holds "
            f"them, or pass download=True to fetch {_ARCHIVE} from {GROUPLENS_URL}"
        )
    return source


# ----------------------------------------------------------------------------------------------
# download
# ----------------------------------------------------------------------------------------------
def download_movielens(
    data_home: str | os.PathLike | None = None,
    *,
    url: str | None = None,
    sha256: str | None = None,
    timeout: float = 60.0,
    deadline: float | None = None,
    max_bytes: int | None = None,
) -> Path:
    """Download ``ml-100k.zip`` into the data home and verify its SHA-256.

    The archive is streamed to a temporary file in the data home, hashed as it
    arrives, and renamed into place only when the hash matches.  A response
    larger than ``max_bytes`` or slower than ``deadline`` is abandoned; on any
    failure the temporary file is deleted, so nothing partial is left behind.

    Parameters
    ----------
    data_home : path, optional
        See :func:`get_data_home`; created if needed.
    url, sha256 : str, optional
        Source and expected hash; default to the module's ``GROUPLENS_URL`` and
        ``ML100K_SHA256``.
    timeout : float
        Seconds to wait for the server to connect or to send more bytes.
    deadline : float, optional
        Seconds for the whole download (default ``DOWNLOAD_DEADLINE``, 300); it
        may be overrun by at most ``timeout``.
    max_bytes : int, optional
        The most bytes accepted (default ``DOWNLOAD_MAX_BYTES``, a little above
        the 4,924,029 bytes of ``ml-100k.zip``); raise it for another archive.

    Returns
    -------
    Path
        The verified archive.

    Raises
    ------
    InputError
        The hash is wrong, the response is too large, or the data home cannot
        be written.
    TimeoutError
        The deadline passed (a :class:`OSError`).
    OSError
        The server could not be reached.
    """
    home = get_data_home(data_home)
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the data home {home}: {exc.strerror or exc}; pass a "
                         f"writable data_home= (or set {DATA_ENV})") from None
    return download_verified(
        GROUPLENS_URL if url is None else url,
        home / _ARCHIVE,
        sha256=ML100K_SHA256 if sha256 is None else sha256,
        timeout=timeout,
        deadline=DOWNLOAD_DEADLINE if deadline is None else deadline,
        max_bytes=DOWNLOAD_MAX_BYTES if max_bytes is None else max_bytes,
    )


# ----------------------------------------------------------------------------------------------
# parsing
# ----------------------------------------------------------------------------------------------
def _malformed(source: LocalSource, name: str, detail) -> InputError:
    return InputError(f"could not parse {source.where(name)}: {detail}. {source.remedy}")


def _read_table(source: LocalSource, name: str, sep: str, names: Sequence[str],
                **kw) -> pd.DataFrame:
    data = source.read(name)
    try:
        table = pd.read_csv(io.BytesIO(data), sep=sep, header=None, names=list(names),
                            encoding="latin-1", **kw)
    except (ValueError, TypeError, OverflowError) as exc:  # pandas' ParserError is a ValueError
        raise _malformed(source, name, exc) from None
    if table.empty:
        raise _malformed(source, name, "it has no rows")
    if not table.index.equals(pd.RangeIndex(len(table))):  # surplus fields became an index
        raise _malformed(source, name, f"rows have more than the {len(names)} fields expected")
    return table


def _read_ratings_file(source: LocalSource, name: str) -> pd.DataFrame:
    return _read_table(source, name, "\t", ["user", "item", "rating", "timestamp"],
                       dtype="int64")


def _unique_ids(source: LocalSource, name: str, ids: pd.Series) -> pd.Index:
    if not ids.is_unique:
        repeated = ids[ids.duplicated()].unique()[:5].tolist()
        raise _malformed(source, name, f"ids repeat, for example {repeated}")
    return pd.Index(ids.to_numpy(np.int64))


def _genres(source: LocalSource) -> list[str]:
    if not source.has("u.genre"):
        return list(GENRES)
    table = _read_table(source, "u.genre", "|", ["genre", "index"],
                        dtype={"genre": str, "index": "int64"}, keep_default_na=False)
    if sorted(table["index"]) != list(range(len(table))) or not table["genre"].is_unique:
        raise _malformed(source, "u.genre", "expected one line 'name|k' for each k = 0, 1, ...")
    return table.sort_values("index")["genre"].tolist()


def _item_info(source: LocalSource) -> pd.DataFrame:
    genres = _genres(source)
    names = ["item", "title", "release_date", "video_release_date", "imdb_url", *genres]
    dtype = {**dict.fromkeys(names, str), "item": "int64", **dict.fromkeys(genres, "int64")}
    raw = _read_table(source, "u.item", "|", names, dtype=dtype, keep_default_na=False)
    if not raw[genres].isin([0, 1]).all(axis=None):
        raise _malformed(source, "u.item", "genre flags must be 0 or 1")
    flags = raw[genres].astype(bool)
    info = pd.DataFrame(
        {
            "title": raw["title"],
            "release_date": pd.to_datetime(raw["release_date"], format="%d-%b-%Y",
                                           errors="coerce"),
            "genres": flags.apply(lambda row: "|".join(row.index[row]), axis=1),
            "imdb_url": raw["imdb_url"],
        }
    )
    info = pd.concat([info, flags], axis=1)
    info.index = _unique_ids(source, "u.item", raw["item"]).rename("item")
    return info


def _user_info(source: LocalSource) -> pd.DataFrame:
    raw = _read_table(source, "u.user", "|", ["user", "age", "gender", "occupation", "zip"],
                      dtype={"user": "int64", "gender": str, "occupation": str, "zip": str})
    index = _unique_ids(source, "u.user", raw["user"]).rename("user")
    return raw.set_index(index).drop(columns="user")


def _to_ratings(source: LocalSource, name: str, universe: Ratings | None = None,
                **kw) -> Ratings:
    table = _read_ratings_file(source, name)
    if universe is not None:
        kw.update(user_ids=universe.users, item_ids=universe.items,
                  item_info=universe.item_info, user_info=universe.user_info)
    try:
        return Ratings.from_arrays(
            table["user"].to_numpy(), table["item"].to_numpy(), table["rating"].to_numpy(),
            timestamps=table["timestamp"].to_numpy(), scale=RatingScale.integers(1, 5), **kw,
        )
    except InputError as exc:
        hint = ("; a fold's ids must all occur in u.data, so these files do not belong together"
                if isinstance(exc, UnknownIdError) else "")
        raise InputError(f"{source.where(name)}: {exc}{hint}. {source.remedy}") from None


def _load_full(source: LocalSource) -> Ratings:
    return _to_ratings(source, "u.data", item_info=_item_info(source),
                       user_info=_user_info(source))


def _load_fold(source: LocalSource, name: str, full: Ratings) -> Split:
    if name not in FOLD_NAMES:
        raise InputError(f"unknown MovieLens fold {name!r}; choose from {list(FOLD_NAMES)}")
    train = _to_ratings(source, f"{name}.base", full)
    test = _to_ratings(source, f"{name}.test", full)
    return Split(train, test, name=name)


# ----------------------------------------------------------------------------------------------
# public loaders
# ----------------------------------------------------------------------------------------------
def _check_variant(variant: str) -> None:
    if variant not in _VARIANTS:
        raise InputError(f"unknown MovieLens variant {variant!r}; supported: {list(_VARIANTS)}")


def load_movielens(variant: str = "100k", data_home=None, download: bool = False, *,
                   verify: bool = True) -> Ratings:
    """MovieLens 100K: 100,000 ratings (1..5) by 943 users of 1,682 movies.

    Parameters
    ----------
    variant : {"100k"}
    data_home : path, optional
        Where to look (see :func:`get_data_home`).
    download : bool
        Fetch the archive from GroupLens if it is not found locally.
    verify : bool
        Check every file read against the size and SHA-256 of the genuine file
        (``ML100K_FILES``); the default.  ``False`` loads a copy you changed on
        purpose: its files are then only parsed (strictly), and the counts above
        no longer hold.

    Returns
    -------
    Ratings
        Ids are the MovieLens integer ids (Python ``int``); timestamps are Unix
        seconds.  ``item_info`` (indexed by item id) holds ``title`` (decoded
        from latin-1), ``release_date``, ``genres`` ("|"-joined), ``imdb_url``
        and one boolean column per genre; ``user_info`` holds ``age``,
        ``gender``, ``occupation`` and ``zip``.

    Raises
    ------
    InputError
        When the files are not found (the message says where to put them), or a
        file is damaged, modified, unreadable or malformed (the message names it
        and says what to do).
    """
    _check_variant(variant)
    return _load_full(_find(data_home, download, verify))


def load_movielens_fold(name: str, data_home=None, download: bool = False, *,
                        verify: bool = True) -> Split:
    """One of the canonical MovieLens 100K splits (``u1.base``/``u1.test``, ...).

    ``name`` is one of ``u1`` .. ``u5`` (five disjoint 20 % test sets) or ``ua``,
    ``ub`` (ten ratings per user in test).  Train and test use the full data
    set's id universe, so codes agree across folds.  ``data_home``,
    ``download`` and ``verify`` are as for :func:`load_movielens`.
    """
    if name not in FOLD_NAMES:
        raise InputError(f"unknown MovieLens fold {name!r}; choose from {list(FOLD_NAMES)}")
    source = _find(data_home, download, verify)
    return _load_fold(source, name, _load_full(source))


def movielens_folds(
    names: Sequence[str] = ("u1", "u2", "u3", "u4", "u5"), data_home=None,
    download: bool = False, *, verify: bool = True,
) -> list[Split]:
    """Several canonical folds (default the five-fold ``u1`` .. ``u5``), sharing one universe.

    ``data_home``, ``download`` and ``verify`` are as for :func:`load_movielens`.
    """
    if isinstance(names, str):
        names = (names,)
    unknown = [n for n in names if n not in FOLD_NAMES]
    if unknown:
        raise InputError(f"unknown MovieLens fold(s) {unknown}; choose from {list(FOLD_NAMES)}")
    source = _find(data_home, download, verify)
    full = _load_full(source)
    return [_load_fold(source, name, full) for name in names]
