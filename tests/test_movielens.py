"""MovieLens loader: a tiny MovieLens-format folder and zip built here, data-home
resolution, download with checksum; and (marked ``movielens``) the real files."""

from __future__ import annotations

import hashlib
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import platformdirs
import pytest

from bayesrec import RatingScale
from bayesrec.data import movielens
from bayesrec.data.movielens import (
    get_data_home,
    load_movielens,
    load_movielens_fold,
    movielens_folds,
)
from bayesrec.errors import InputError

# user item rating timestamp; item 50 is rated only in u1.test (cold in u1's training set)
RATINGS = [
    (1, 10, 5, 881250949), (1, 20, 3, 881250950), (2, 10, 4, 891717742),
    (2, 30, 1, 878887116), (3, 20, 2, 880606923), (3, 30, 5, 886397596),
    (4, 40, 4, 884182806), (4, 50, 3, 881171488),
]
U1_TEST = {(2, 30), (4, 50)}
TITLES = {10: "Toy Story (1995)", 20: "GoldenEye (1995)", 30: "Misérables, Les (1995)",
          40: "Four Rooms (1995)", 50: "unknown"}
DATES = {10: "01-Jan-1995", 20: "01-Jan-1995", 30: "15-Dec-1995", 40: "01-Jan-1995", 50: ""}
GENRES = {10: ["Animation", "Children's", "Comedy"], 20: ["Action", "Thriller"],
          30: ["Drama"], 40: ["Thriller"], 50: ["unknown"]}
USERS = [(1, 24, "M", "technician", "85711"), (2, 53, "F", "other", "94043"),
         (3, 23, "M", "writer", "T8H1N"), (4, 24, "M", "technician", "43537")]


def _ratings_lines(rows) -> str:
    return "".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in rows)


def tiny_files() -> dict[str, bytes]:
    """The files of a MovieLens-100K-format data set with 4 users, 5 items and 8 ratings."""
    genre_names = movielens.GENRES
    lines = []
    for item, title in TITLES.items():
        flags = "|".join("1" if g in GENRES[item] else "0" for g in genre_names)
        url = "" if item == 50 else f"http://us.imdb.com/M/title-exact?{item}"
        lines.append(f"{item}|{title}|{DATES[item]}||{url}|{flags}\n")
    return {
        "u.data": _ratings_lines(RATINGS).encode(),
        "u1.base": _ratings_lines(r for r in RATINGS if r[:2] not in U1_TEST).encode(),
        "u1.test": _ratings_lines(r for r in RATINGS if r[:2] in U1_TEST).encode(),
        "u.genre": ("".join(f"{g}|{k}\n" for k, g in enumerate(genre_names)) + "\n").encode(),
        "u.item": "".join(lines).encode("latin-1"),
        "u.user": "".join("|".join(map(str, u)) + "\n" for u in USERS).encode(),
    }


# size and SHA-256 of the tiny files, registered in place of the real ones by `tiny_checksums`
TINY_CHECKSUMS = {name: (len(data), hashlib.sha256(data).hexdigest())
                  for name, data in tiny_files().items()}


def write_tiny_movielens(folder: Path, files: dict[str, bytes] | None = None) -> Path:
    """Write the tiny data set (or ``files``) into ``folder``."""
    folder.mkdir(parents=True)
    for name, data in (tiny_files() if files is None else files).items():
        (folder / name).write_bytes(data)
    return folder


def zip_folder(folder: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ml-100k/", "")
        for file in sorted(folder.iterdir()):
            zf.write(file, f"ml-100k/{file.name}")
    return archive


@pytest.fixture
def tiny_checksums(monkeypatch) -> dict:
    """Make the loader verify against the tiny files' checksums (the real ones for the rest)."""
    table = {**movielens.ML100K_FILES, **TINY_CHECKSUMS}
    monkeypatch.setattr(movielens, "ML100K_FILES", table)
    return table


@pytest.fixture
def tiny_home(tmp_path, tiny_checksums) -> Path:
    """A data home holding the tiny ``ml-100k/`` folder."""
    home = tmp_path / "home"
    write_tiny_movielens(home / "ml-100k")
    return home


@pytest.fixture
def tiny_zip(tmp_path, tiny_checksums) -> Path:
    """The tiny data set as ``ml-100k.zip``, outside any data home."""
    return zip_folder(write_tiny_movielens(tmp_path / "src" / "ml-100k"),
                      tmp_path / "src" / "ml-100k.zip")


# ----------------------------------------------------------------------------------------------
# loading
# ----------------------------------------------------------------------------------------------
def test_tiny_folder_loads(tiny_home):
    r = load_movielens(data_home=tiny_home)
    assert (len(r), r.n_users, r.n_items) == (8, 4, 5)
    assert r.users.tolist() == [1, 2, 3, 4] and r.items.tolist() == [10, 20, 30, 40, 50]
    assert r.scale == RatingScale.integers(1, 5)
    got = set(zip(r.user_ids, r.item_ids, r.rating, r.timestamp, strict=True))
    assert got == {(u, i, float(x), t) for u, i, x, t in RATINGS}


def test_item_and_user_info(tiny_home):
    r = load_movielens(data_home=tiny_home)
    info = r.item_info
    assert info.index.tolist() == [10, 20, 30, 40, 50]
    assert info.loc[30, "title"] == "Misérables, Les (1995)"  # decoded from latin-1
    assert info.loc[10, "genres"] == "Animation|Children's|Comedy"
    assert bool(info.loc[20, "Action"]) and not bool(info.loc[10, "Action"])
    assert info["Thriller"].dtype == bool and info["Thriller"].sum() == 2
    assert info.loc[30, "release_date"] == pd.Timestamp("1995-12-15")
    assert pd.isna(info.loc[50, "release_date"])
    users = r.user_info
    assert users.columns.tolist() == ["age", "gender", "occupation", "zip"]
    assert users.loc[3, "zip"] == "T8H1N" and users.loc[2, "age"] == 53


def test_zip_loads_like_the_folder(tiny_home, tiny_zip, tmp_path):
    zip_home = tmp_path / "zip_home"
    zip_home.mkdir()
    tiny_zip.rename(zip_home / "ml-100k.zip")
    a, b = load_movielens(data_home=tiny_home), load_movielens(data_home=zip_home)
    for name in ("user", "item", "rating", "timestamp"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.fingerprint() == b.fingerprint()
    pd.testing.assert_frame_equal(a.item_info, b.item_info)
    pd.testing.assert_frame_equal(a.user_info, b.user_info)
    assert b.item_info.loc[30, "title"] == "Misérables, Les (1995)"
    assert load_movielens_fold("u1", data_home=zip_home).test.n_ratings == 2


def test_data_home_may_be_the_folder_itself(tiny_home):
    assert len(load_movielens(data_home=tiny_home / "ml-100k")) == 8


def test_fold_shares_the_full_universe(tiny_home):
    split = load_movielens_fold("u1", data_home=tiny_home)
    full = load_movielens(data_home=tiny_home)
    assert split.name == "u1"
    assert split.train.same_universe(full) and split.test.same_universe(full)
    assert (len(split.train), len(split.test)) == (6, 2)
    assert set(zip(split.test.user_ids, split.test.item_ids, strict=True)) == U1_TEST
    assert split.cold_items.tolist() == [50]  # reported, not dropped
    assert split.train.item_info is not None
    [again] = movielens_folds(("u1",), data_home=tiny_home)
    np.testing.assert_array_equal(again.test.item, split.test.item)


# ----------------------------------------------------------------------------------------------
# errors
# ----------------------------------------------------------------------------------------------
def test_missing_data_error_says_where(tmp_path, monkeypatch):
    empty = tmp_path / "nothing here"
    monkeypatch.delenv("BAYESREC_DATA", raising=False)
    with pytest.raises(InputError) as info:
        load_movielens(data_home=empty)
    message = str(info.value)
    assert f"MovieLens 100K not found in {empty}" in message
    assert "ml-100k/" in message and "ml-100k.zip" in message
    assert "BAYESREC_DATA" in message and "download=True" in message
    monkeypatch.setenv("BAYESREC_DATA", str(empty))
    with pytest.raises(InputError, match=re.escape(str(empty))):
        load_movielens_fold("u2")


def test_missing_fold_file(tiny_home):
    with pytest.raises(InputError, match=r"u2.base is missing from .*ml-100k"):
        load_movielens_fold("u2", data_home=tiny_home)


def test_missing_member_in_zip(tiny_zip):
    with pytest.raises(InputError, match=r"ub.base is missing from the archive .*ml-100k.zip"):
        load_movielens_fold("ub", data_home=tiny_zip)  # the zip file itself as data home


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda h: load_movielens("1m", data_home=h), "unknown MovieLens variant '1m'"),
        (lambda h: load_movielens_fold("u9", data_home=h), "unknown MovieLens fold 'u9'"),
        (lambda h: movielens_folds(("u1", "x"), data_home=h), r"unknown MovieLens fold\(s\) "
                                                               r"\['x'\]"),
    ],
)
def test_argument_errors(tiny_home, call, message):
    with pytest.raises(InputError, match=message):
        call(tiny_home)


def test_ids_are_python_ints(tiny_home):
    r = load_movielens(data_home=tiny_home)
    for index in (r.users, r.items, r.item_info.index, r.user_info.index):
        assert index.dtype == np.int64 and all(type(i) is int for i in index.tolist())


# malformed files, loaded with verify=False (verified copies cannot be malformed)
UNVERIFIED = r"\. This copy was read with verify=False: fix the file, or delete .* download=True"


def _edit(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


@pytest.mark.parametrize(
    ("name", "edit", "message"),
    [
        ("u.user", lambda t: _edit(t, "1|24|M", "one|24|M"), r"could not parse .*u.user: "),
        ("u.user", lambda t: _edit(t, "85711", "85711|extra"),
         r"could not parse .*u.user: rows have more than the 5 fields expected"),
        ("u.user", lambda t: _edit(t, "2|53|F", "1|53|F"),
         r"could not parse .*u.user: ids repeat, for example \[1\]"),
        ("u.user", lambda t: "", r"could not parse .*u.user: it has no rows"),
        ("u.item", lambda t: _edit(t, "|0|0|0|0|0\n", "|0|0|0|0|2\n"),
         r"could not parse .*u.item: genre flags must be 0 or 1"),
        ("u.item", lambda t: _edit(t, "|0|0|0|0|0\n", "\n"), r"could not parse .*u.item: "),
        ("u.item", lambda t: _edit(t, "20|GoldenEye", "x|GoldenEye"),
         r"could not parse .*u.item: "),
        ("u.genre", lambda t: _edit(t, "Action|1", "Action|7"),
         r"could not parse .*u.genre: expected one line 'name\|k' for each k = 0, 1, \.\.\."),
        ("u.data", lambda t: _edit(t, "1\t10\t5", "1\t10\tfive"), r"could not parse .*u.data: "),
        ("u.data", lambda t: _edit(t, "1\t10\t5", "1\t10\t7"),
         r"u.data: 1 rating\(s\) are off the rating scale"),
    ],
)
def test_malformed_files_name_the_file(tiny_home, name, edit, message):
    file = tiny_home / "ml-100k" / name
    file.write_bytes(edit(file.read_bytes().decode("latin-1")).encode("latin-1"))
    with pytest.raises(InputError, match=message + ".*" + UNVERIFIED):
        load_movielens(data_home=tiny_home, verify=False)


def test_fold_with_ids_missing_from_u_data(tiny_home):
    test = tiny_home / "ml-100k" / "u1.test"
    test.write_text(test.read_text() + "9\t10\t3\t881250949\n")
    with pytest.raises(InputError, match=r"u1.test: .*user id missing from the declared users, "
                                         r"for example \[9\]; a fold's ids must all occur in "
                                         r"u.data, so these files do not belong together" + UNVERIFIED):
        load_movielens_fold("u1", data_home=tiny_home, verify=False)


# ----------------------------------------------------------------------------------------------
# data home
# ----------------------------------------------------------------------------------------------
def test_data_home_resolution_order(tmp_path, monkeypatch):
    monkeypatch.delenv("BAYESREC_DATA", raising=False)
    assert get_data_home() == Path(platformdirs.user_cache_dir("bayesrec"))
    monkeypatch.setattr(platformdirs, "user_cache_dir", lambda name: str(tmp_path / "cache" / name))
    assert get_data_home() == tmp_path / "cache" / "bayesrec"
    monkeypatch.setenv("BAYESREC_DATA", str(tmp_path / "env"))
    assert get_data_home() == tmp_path / "env"
    assert get_data_home(tmp_path / "arg") == tmp_path / "arg"
    assert get_data_home(str(tmp_path / "arg")) == tmp_path / "arg"
    assert not (tmp_path / "env").exists()  # resolving does not create folders


def test_env_var_is_used_by_the_loader(tiny_home, monkeypatch):
    monkeypatch.setenv("BAYESREC_DATA", str(tiny_home))
    assert len(load_movielens()) == 8


# ----------------------------------------------------------------------------------------------
# download
# ----------------------------------------------------------------------------------------------
def test_constants():
    assert movielens.GROUPLENS_URL == "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
    assert re.fullmatch("[0-9a-f]{64}", movielens.ML100K_SHA256)


def test_download_with_matching_checksum(tiny_zip, tmp_path, monkeypatch):
    digest = hashlib.sha256(tiny_zip.read_bytes()).hexdigest()
    monkeypatch.setattr(movielens, "GROUPLENS_URL", tiny_zip.as_uri())
    monkeypatch.setattr(movielens, "ML100K_SHA256", digest)
    home = tmp_path / "new" / "home"
    r = load_movielens(data_home=home, download=True)
    assert len(r) == 8
    assert [p.name for p in home.iterdir()] == ["ml-100k.zip"]  # no temporary file left
    assert (home / "ml-100k.zip").read_bytes() == tiny_zip.read_bytes()
    # present now: no second download (the source is gone)
    tiny_zip.unlink()
    assert len(load_movielens_fold("u1", data_home=home, download=True).train) == 6


def test_download_checksum_mismatch_is_rejected(tiny_zip, tmp_path, monkeypatch):
    monkeypatch.setattr(movielens, "GROUPLENS_URL", tiny_zip.as_uri())
    monkeypatch.setattr(movielens, "ML100K_SHA256", "0" * 64)
    home = tmp_path / "home"
    with pytest.raises(InputError, match="checksum mismatch for .*: expected SHA-256 0{64}, "
                                         "got [0-9a-f]{64}; the download was deleted"):
        load_movielens(data_home=home, download=True)
    assert list(home.iterdir()) == []


def test_download_keyword_arguments(tiny_zip, tmp_path):
    digest = hashlib.sha256(tiny_zip.read_bytes()).hexdigest()
    path = movielens.download_movielens(tmp_path / "kw", url=tiny_zip.as_uri(), sha256=digest)
    assert path == tmp_path / "kw" / "ml-100k.zip" and path.is_file()
    with pytest.raises(InputError, match="checksum mismatch"):
        movielens.download_movielens(tmp_path / "kw2", url=tiny_zip.as_uri(), sha256="f" * 64)
    assert list((tmp_path / "kw2").iterdir()) == []


def test_download_failure_is_reported(tmp_path):
    missing = (tmp_path / "absent.zip").as_uri()
    with pytest.raises(OSError, match="could not download .*absent.zip"):
        movielens.download_movielens(tmp_path / "home", url=missing, sha256="0" * 64)
    assert list((tmp_path / "home").iterdir()) == []


# ----------------------------------------------------------------------------------------------
# the real MovieLens 100K (skipped when absent)
# ----------------------------------------------------------------------------------------------
@pytest.mark.movielens
def test_real_movielens(movielens_home):
    r = load_movielens(data_home=movielens_home)
    assert (len(r), r.n_users, r.n_items) == (100_000, 943, 1682)
    assert movielens.ML100K_COUNTS == {"ratings": 100_000, "users": 943, "items": 1682}
    assert r.scale == RatingScale.integers(1, 5)
    assert r.users[0] == 1 and r.items[-1] == 1682
    assert r.item_info.shape[0] == 1682 and r.user_info.shape[0] == 943
    assert r.item_info.loc[1, "title"] == "Toy Story (1995)"
    assert r.item_info["title"].str.contains("é").any()  # latin-1 decoded
    assert r.user_counts().min() == 20


@pytest.mark.movielens
def test_real_movielens_folds(movielens_home):
    full = load_movielens(data_home=movielens_home)
    folds = movielens_folds(("u1", "u2", "u3", "u4", "u5", "ua", "ub"), data_home=movielens_home)
    assert (len(folds[0].train), len(folds[0].test)) == (80_000, 20_000)
    assert (len(folds[5].train), len(folds[5].test)) == (90_570, 9_430)
    full_keys = set(full.user * full.n_items + full.item)
    u_tests = []
    for split in folds:
        assert split.train.same_universe(full) and split.test.same_universe(full)
        train = set(split.train.user * full.n_items + split.train.item)
        test = set(split.test.user * full.n_items + split.test.item)
        assert not train & test and train | test == full_keys
        if split.name.startswith("u") and split.name[1].isdigit():
            u_tests.append(test)
    assert set().union(*u_tests) == full_keys and sum(map(len, u_tests)) == 100_000


def _real_files(home: Path) -> dict[str, bytes]:
    """The genuine files (verified as they are read), to tamper with copies in tmp_path."""
    source = movielens._locate(home, verify=True)
    return {name: source.read(name) for name in movielens.ML100K_FILES}


@pytest.mark.movielens
def test_real_zip_with_one_rating_changed(movielens_home, tmp_path):
    files = _real_files(movielens_home)
    first = files["u.data"].split(b"\n", 1)[0]
    user, item, rating, time = first.split(b"\t")
    changed = b"\t".join([user, item, b"4" if rating == b"5" else b"5", time])
    files["u.data"] = files["u.data"].replace(first, changed, 1)
    archive = tmp_path / "ml-100k.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(f"ml-100k/{name}", data)
    expected = movielens.ML100K_FILES["u.data"][1]
    with pytest.raises(InputError, match=rf"^ml-100k/u.data in the archive "
                                         rf"{re.escape(str(archive))} is not the MovieLens 100K "
                                         rf"file u.data: it has SHA-256 [0-9a-f]{{64}} instead of "
                                         rf"{expected}, so the copy is damaged or was modified\. "
                                         rf"Delete {re.escape(str(archive))} and load again with "
                                         r"download=True"):
        load_movielens(data_home=tmp_path)
    assert len(load_movielens(data_home=tmp_path, verify=False)) == 100_000  # the escape hatch


@pytest.mark.movielens
def test_real_u_data_cut_mid_line(movielens_home, tmp_path):
    files = _real_files(movielens_home)
    end = files["u.data"].index(b"\n", len(files["u.data"]) // 2) - 3  # inside a timestamp
    files["u.data"] = files["u.data"][:end]
    folder = write_tiny_movielens(tmp_path / "ml-100k", files)
    with pytest.raises(InputError, match=rf"^{re.escape(str(folder / 'u.data'))} is not the "
                                         rf"MovieLens 100K file u.data: it has {end:,} bytes "
                                         r"instead of 1,979,173, so the copy is damaged or was "
                                         rf"modified\. Delete {re.escape(str(folder))} and load "
                                         r"again with download=True"):
        load_movielens_fold("u1", data_home=tmp_path)
    # unverified, the cut file parses (about half the ratings), and the fold names the mismatch
    assert len(load_movielens(data_home=tmp_path, verify=False)) < 60_000
    with pytest.raises(InputError, match=r"u1.base: .* a fold's ids must all occur in u.data, "
                                         r"so these files do not belong together"):
        load_movielens_fold("u1", data_home=tmp_path, verify=False)
