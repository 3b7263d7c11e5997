"""The MovieLens 100K data set (GroupLens): loader, canonical folds and download.

MovieLens is never shipped with bayesrec (its licence forbids redistribution).
The loader looks in a *data home*, resolved like scikit-learn's: the
``data_home`` argument, else the ``BAYESREC_DATA`` environment variable, else the
user cache folder (``platformdirs.user_cache_dir("bayesrec")``).  The data home
may hold the extracted folder ``ml-100k/`` or the archive ``ml-100k.zip`` (read
in place, no extraction), or may itself be the ``ml-100k`` folder.

``download=True`` fetches the archive from GroupLens when it is not found
locally, and checks its SHA-256 before keeping it.

F. Maxwell Harper and Joseph A. Konstan. 2015. The MovieLens Datasets: History and
Context. ACM Transactions on Interactive Intelligent Systems 5(4): 19.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import platformdirs

from bayesrec.data.ratings import Ratings
from bayesrec.data.scale import RatingScale
from bayesrec.data.splits import Split
from bayesrec.errors import InputError

__all__ = [
    "GROUPLENS_URL",
    "ML100K_SHA256",
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
DATA_ENV = "BAYESREC_DATA"
FOLD_NAMES = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")
_FOLDER = "ml-100k"
_ARCHIVE = "ml-100k.zip"
_VARIANTS = ("100k",)
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


class _Source:
    """Reads the MovieLens files from a folder or from the zip archive."""

    def __init__(self, path: Path):
        self.path = path
        self.is_zip = path.is_file()
        if self.is_zip:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
            # members are "ml-100k/u.data"; accept an archive without the folder too
            self.members = {
                Path(n).name: n for n in names if Path(n).parent.name in ("", _FOLDER)
            }

    def read(self, name: str) -> bytes:
        if self.is_zip:
            if name not in self.members:
                raise InputError(f"{name} is missing from the archive {self.path}")
            with zipfile.ZipFile(self.path) as zf:
                return zf.read(self.members[name])
        file = self.path / name
        if not file.is_file():
            raise InputError(f"{name} is missing from {self.path}")
        return file.read_bytes()

    def has(self, name: str) -> bool:
        return name in self.members if self.is_zip else (self.path / name).is_file()


def _locate(home: Path) -> _Source | None:
    """The MovieLens folder or archive in (or at) ``home``, or None."""
    candidates = [home / _FOLDER, home]
    for folder in candidates:
        if (folder / "u.data").is_file():
            return _Source(folder)
    for archive in (home / _ARCHIVE, home):
        if archive.is_file() and zipfile.is_zipfile(archive):
            return _Source(archive)
    return None


def _find(data_home, download: bool) -> _Source:
    home = get_data_home(data_home)
    source = _locate(home)
    if source is None and download:
        download_movielens(home)
        source = _locate(home)
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
) -> Path:
    """Download ``ml-100k.zip`` into the data home and verify its SHA-256.

    The archive is written to a temporary file in the data home, hashed while it
    streams, and renamed into place only when the hash matches; on a mismatch
    the temporary file is deleted and :class:`InputError` is raised.

    Parameters
    ----------
    data_home : path, optional
        See :func:`get_data_home`; created if needed.
    url, sha256 : str, optional
        Source and expected hash; default to the module's ``GROUPLENS_URL`` and
        ``ML100K_SHA256``.
    timeout : float
        Seconds to wait for the server.

    Returns
    -------
    Path
        The verified archive.
    """
    url = GROUPLENS_URL if url is None else url
    expected = (ML100K_SHA256 if sha256 is None else sha256).lower()
    home = get_data_home(data_home)
    home.mkdir(parents=True, exist_ok=True)
    target = home / _ARCHIVE
    fd, tmp_name = tempfile.mkstemp(dir=home, prefix=".ml-100k.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            while chunk := resp.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        got = digest.hexdigest()
        if got != expected:
            raise InputError(
                f"checksum mismatch for {url}: expected SHA-256 {expected}, got {got}; the "
                f"download was deleted. Retry, or put a verified {_ARCHIVE} in {home} by hand"
            )
        os.replace(tmp, target)
    except urllib.error.URLError as exc:
        raise OSError(
            f"could not download {url} ({exc.reason}); download it by hand and put "
            f"{_ARCHIVE} in {home}"
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)
    return target


# ----------------------------------------------------------------------------------------------
# parsing
# ----------------------------------------------------------------------------------------------
def _read_table(source: _Source, name: str, sep: str, names: Sequence[str], **kw) -> pd.DataFrame:
    try:
        return pd.read_csv(
            io.BytesIO(source.read(name)), sep=sep, header=None, names=list(names),
            encoding="latin-1", **kw,
        )
    except (pd.errors.ParserError, ValueError) as exc:
        raise InputError(f"could not parse {name} in {source.path}: {exc}") from None


def _read_ratings_file(source: _Source, name: str) -> pd.DataFrame:
    return _read_table(source, name, "\t", ["user", "item", "rating", "timestamp"],
                       dtype="int64")


def _genres(source: _Source) -> list[str]:
    if not source.has("u.genre"):
        return list(GENRES)
    table = _read_table(source, "u.genre", "|", ["genre", "index"]).dropna()
    return table.sort_values("index")["genre"].tolist()


def _item_info(source: _Source) -> pd.DataFrame:
    genres = _genres(source)
    names = ["item", "title", "release_date", "video_release_date", "imdb_url", *genres]
    raw = _read_table(source, "u.item", "|", names, dtype={"title": str, "imdb_url": str},
                      keep_default_na=False)
    flags = raw[genres].astype(int).astype(bool)
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
    info.index = pd.Index(raw["item"].astype(np.int64), name="item")
    return info


def _user_info(source: _Source) -> pd.DataFrame:
    raw = _read_table(source, "u.user", "|", ["user", "age", "gender", "occupation", "zip"],
                      dtype={"zip": str})
    return raw.set_index(pd.Index(raw["user"].astype(np.int64), name="user")).drop(columns="user")


def _to_ratings(table: pd.DataFrame, universe: Ratings | None = None, **kw) -> Ratings:
    if universe is not None:
        kw.update(user_ids=universe.users, item_ids=universe.items,
                  item_info=universe.item_info, user_info=universe.user_info)
    return Ratings.from_arrays(
        table["user"].to_numpy(), table["item"].to_numpy(), table["rating"].to_numpy(),
        timestamps=table["timestamp"].to_numpy(), scale=RatingScale.integers(1, 5), **kw,
    )


def _load_full(source: _Source) -> Ratings:
    return _to_ratings(_read_ratings_file(source, "u.data"),
                       item_info=_item_info(source), user_info=_user_info(source))


def _load_fold(source: _Source, name: str, full: Ratings) -> Split:
    if name not in FOLD_NAMES:
        raise InputError(f"unknown MovieLens fold {name!r}; choose from {list(FOLD_NAMES)}")
    train = _to_ratings(_read_ratings_file(source, f"{name}.base"), full)
    test = _to_ratings(_read_ratings_file(source, f"{name}.test"), full)
    return Split(train, test, name=name)


# ----------------------------------------------------------------------------------------------
# public loaders
# ----------------------------------------------------------------------------------------------
def _check_variant(variant: str) -> None:
    if variant not in _VARIANTS:
        raise InputError(f"unknown MovieLens variant {variant!r}; supported: {list(_VARIANTS)}")


def load_movielens(variant: str = "100k", data_home=None, download: bool = False) -> Ratings:
    """MovieLens 100K: 100,000 ratings (1..5) by 943 users of 1682 movies.

    Parameters
    ----------
    variant : {"100k"}
    data_home : path, optional
        Where to look (see :func:`get_data_home`).
    download : bool
        Fetch the archive from GroupLens if it is not found locally.

    Returns
    -------
    Ratings
        Ids are the MovieLens integer ids; timestamps are Unix seconds.
        ``item_info`` (indexed by item id) holds ``title`` (decoded from
        latin-1), ``release_date``, ``genres`` ("|"-joined), ``imdb_url`` and one
        boolean column per genre; ``user_info`` holds ``age``, ``gender``,
        ``occupation`` and ``zip``.

    Raises
    ------
    InputError
        When the files are not found (the message says where to put them).
    """
    _check_variant(variant)
    return _load_full(_find(data_home, download))


def load_movielens_fold(name: str, data_home=None, download: bool = False) -> Split:
    """One of the canonical MovieLens 100K splits (``u1.base``/``u1.test``, ...).

    ``name`` is one of ``u1`` .. ``u5`` (five disjoint 20 % test sets) or ``ua``,
    ``ub`` (ten ratings per user in test).  Train and test use the full data
    set's id universe, so codes agree across folds.
    """
    if name not in FOLD_NAMES:
        raise InputError(f"unknown MovieLens fold {name!r}; choose from {list(FOLD_NAMES)}")
    source = _find(data_home, download)
    return _load_fold(source, name, _load_full(source))


def movielens_folds(
    names: Sequence[str] = ("u1", "u2", "u3", "u4", "u5"), data_home=None, download: bool = False
) -> list[Split]:
    """Several canonical folds (default the five-fold ``u1`` .. ``u5``), sharing one universe."""
    if isinstance(names, str):
        names = (names,)
    unknown = [n for n in names if n not in FOLD_NAMES]
    if unknown:
        raise InputError(f"unknown MovieLens fold(s) {unknown}; choose from {list(FOLD_NAMES)}")
    source = _find(data_home, download)
    full = _load_full(source)
    return [_load_fold(source, name, full) for name in names]
