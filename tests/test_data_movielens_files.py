"""MovieLens local copies are not trusted: every file read is verified, archive members are
taken only under their expected names, and unreadable or damaged copies are named with the fix.

The data are the tiny MovieLens-format files of ``test_movielens.py``, verified against their
own checksums (the ``tiny_checksums`` fixture); the real files are in ``test_movielens.py``.
"""

from __future__ import annotations

import pathlib
import re
import tempfile
import warnings
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_movielens import RATINGS, TINY_CHECKSUMS, tiny_files, write_tiny_movielens, zip_folder

from bayesrec.data import movielens
from bayesrec.data.movielens import load_movielens, load_movielens_fold
from bayesrec.errors import InputError

FIX = (r"Delete .* and load again with download=True to fetch a verified copy \(or put a good "
       r"copy there by hand\); pass verify=False only to load a copy you changed on purpose\.")


@pytest.fixture(autouse=True)
def tiny_checksums(monkeypatch) -> None:
    """Verify against the tiny files' checksums (see test_movielens.py)."""
    monkeypatch.setattr(movielens, "ML100K_FILES", {**movielens.ML100K_FILES, **TINY_CHECKSUMS})


@pytest.fixture
def tiny_home(tmp_path) -> Path:
    home = tmp_path / "home"
    write_tiny_movielens(home / "ml-100k")
    return home


@pytest.fixture
def tiny_zip(tmp_path) -> Path:
    return zip_folder(write_tiny_movielens(tmp_path / "src" / "ml-100k"),
                      tmp_path / "src" / "ml-100k.zip")


def _tamper(data: bytes, how: str, position: int, byte: int) -> bytes:
    position %= len(data)
    if how == "flip":
        return data[:position] + bytes([data[position] ^ byte]) + data[position + 1:]
    if how == "cut":
        return data[:position]
    return data + bytes([byte])


def _zip(archive: Path, members: list[tuple[str, bytes]]) -> Path:
    """An archive with exactly these members, in this order (duplicates allowed), stored."""
    with zipfile.ZipFile(archive, "w") as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns of duplicate names
        for name, data in members:
            zf.writestr(name, data)
    return archive


def _real_members() -> list[tuple[str, bytes]]:
    return [(f"ml-100k/{name}", data) for name, data in tiny_files().items()]


SHADOW = b"1\t10\t1\t1\n2\t20\t1\t2\n"  # two ratings


# ----------------------------------------------------------------------------------------------
# any change to a file that is read is caught, in a folder or an archive
# ----------------------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layout=st.sampled_from(["folder", "zip"]), name=st.sampled_from(sorted(tiny_files())),
       how=st.sampled_from(["flip", "cut", "append"]), position=st.integers(0, 10**6),
       byte=st.integers(1, 255))
def test_any_change_to_a_file_is_caught(layout, name, how, position, byte):
    files = tiny_files()
    files[name] = _tamper(files[name], how, position, byte)
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_tiny_movielens(Path(tmp) / "home" / "ml-100k", files)
        if layout == "folder":
            home, where = folder.parent, re.escape(str(folder / name))
        else:
            home = Path(tmp) / "zip_home"
            home.mkdir()
            archive = zip_folder(folder, home / "ml-100k.zip")
            where = re.escape(f"ml-100k/{name} in the archive {archive}")
        with pytest.raises(InputError, match=rf"^{where} is not the MovieLens 100K file "
                                             rf"{re.escape(name)}: it has ([\d,]+ bytes instead "
                                             r"of [\d,]+|SHA-256 [0-9a-f]{64} instead of "
                                             rf"[0-9a-f]{{64}}), so the copy is damaged or was "
                                             rf"modified\. {FIX}$"):
            load_movielens_fold("u1", data_home=home)


def test_verify_false_loads_a_copy_changed_on_purpose(tiny_home):
    data = tiny_home / "ml-100k" / "u.data"
    data.write_text(data.read_text().replace("1\t10\t5\t", "1\t10\t1\t", 1))
    with pytest.raises(InputError, match=r"u.data is not the MovieLens 100K file u.data: it has "
                                         r"SHA-256"):
        load_movielens(data_home=tiny_home)
    r = load_movielens(data_home=tiny_home, verify=False)
    assert r.rating[(r.user_ids == 1) & (r.item_ids == 10)].tolist() == [1.0]
    [split] = movielens.movielens_folds(["u1"], data_home=tiny_home, verify=False)
    assert len(split.train) == 6


# ----------------------------------------------------------------------------------------------
# archive members: the expected names only
# ----------------------------------------------------------------------------------------------
def _expected(extra: str, kind: str) -> str:
    name = extra.replace("\\", "/").rsplit("/", 1)[-1]
    if kind == "unsafe":
        return (rf"holds a member with an unsafe path {re.escape(repr(extra))} \(outside the "
                r"archive's folder\)")
    if kind == "twice":
        first = "ml-100k/" + name
        return rf"holds {re.escape(name)} more than once \({re.escape(repr([first, extra]))}\)"
    return (rf"holds {re.escape(name)} at an unexpected path {re.escape(repr(extra))} "
            rf"\(expected 'ml-100k/{re.escape(name)}'\)")


@pytest.mark.parametrize("verify", [True, False])
@pytest.mark.parametrize(
    ("extra", "kind"),
    [
        ("../ml-100k/u.data", "unsafe"),  # once loaded as 2 ratings in place of the real u.data
        ("/ml-100k/u.data", "unsafe"),
        ("ml-100k/../u.data", "unsafe"),
        ("..\\ml-100k\\u.data", "unsafe"),
        ("C:/ml-100k/u.data", "unsafe"),
        ("../evil.sh", "unsafe"),
        ("ml-100k/u.data", "twice"),
        ("u.data", "twice"),
        ("other/u.data", "odd"),
        ("ml-100k/ml-100k/u1.base", "odd"),
    ],
)
def test_archive_with_a_shadow_member_is_refused(tmp_path, extra, kind, verify):
    archive = _zip(tmp_path / "ml-100k.zip", [*_real_members(), (extra, SHADOW)])
    fix = FIX if verify else r"This copy was read with verify=False: fix the file, or delete"
    with pytest.raises(InputError, match=rf"^the archive {re.escape(str(archive))} "
                                         rf"{_expected(extra, kind)}, so it is not the MovieLens "
                                         rf"100K archive\. {fix}"):
        load_movielens(data_home=tmp_path, verify=verify)


_segment = st.sampled_from(["..", ".", "", "ml-100k", "x", "u.data", "C:", "\\.."])


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.lists(_segment, min_size=0, max_size=3).map("/".join),
       separator=st.sampled_from(["/", "\\"]), first=st.booleans())
def test_no_member_name_can_shadow_u_data(tmp_path, path, separator,
                                          first):
    # whatever its name and position, another member called u.data is never what gets loaded
    shadow = (f"{path}{separator}u.data" if path else "u.data", SHADOW)
    members = [shadow, *_real_members()] if first else [*_real_members(), shadow]
    archive = _zip(tmp_path / "ml-100k.zip", members)
    try:
        r = load_movielens(data_home=archive, verify=False)
    except InputError as exc:
        assert str(archive) in str(exc)
        return
    assert len(r) == len(RATINGS)


def test_archive_without_the_folder_loads(tmp_path):
    members = [(name, data) for name, data in tiny_files().items()] + [("README", b"hi")]
    archive = _zip(tmp_path / "ml-100k.zip", members)
    assert len(load_movielens(data_home=archive)) == len(RATINGS)


# ----------------------------------------------------------------------------------------------
# damaged archives and unreadable copies
# ----------------------------------------------------------------------------------------------
def test_a_file_that_is_not_a_zip(tmp_path):
    (tmp_path / "ml-100k.zip").write_bytes(b"<html>503 Service Unavailable</html>")
    with pytest.raises(InputError, match=r"cannot read the archive .*ml-100k.zip \(File is not a "
                                         r"zip file\): it is not a valid zip archive or is "
                                         rf"damaged\. {FIX}"):
        load_movielens(data_home=tmp_path)


@pytest.mark.parametrize("verify", [True, False])
def test_a_member_with_a_bad_crc(tmp_path, verify):
    archive = _zip(tmp_path / "ml-100k.zip", _real_members())  # stored: the bytes are as written
    raw = archive.read_bytes()
    at = raw.index(tiny_files()["u.data"])
    archive.write_bytes(raw[:at] + b"9" + raw[at + 1:])
    with pytest.raises(InputError, match=r"cannot read the archive .*ml-100k.zip \(Bad CRC-32 "
                                         r"for file 'ml-100k/u.data'\)"):
        load_movielens(data_home=tmp_path, verify=verify)


def _deny(monkeypatch, method: str, denied) -> None:
    """Make ``Path.<method>`` fail for paths ``denied(path)`` accepts, as without permission
    (the tests may run as root, for whom chmod changes nothing)."""
    original = getattr(pathlib.Path, method)

    def guarded(self, *args, **kwargs):
        if denied(self):
            raise PermissionError(13, "Permission denied", str(self))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, method, guarded)


def test_unreadable_data_home(tiny_home, monkeypatch):
    folder = tiny_home / "ml-100k"
    _deny(monkeypatch, "stat", lambda p: p.parent == folder)
    with pytest.raises(InputError, match=rf"cannot look into {re.escape(str(folder))}: "
                                         r"Permission denied; make that folder readable"):
        load_movielens(data_home=tiny_home)


@pytest.mark.parametrize("name", ["u.data", "u.item", "u1.test"])
def test_unreadable_file(tiny_home, monkeypatch, name):
    file = tiny_home / "ml-100k" / name
    _deny(monkeypatch, "open", lambda p: p == file)
    with pytest.raises(InputError, match=rf"cannot read {re.escape(str(file))}: Permission "
                                         r"denied; make it readable by this user"):
        load_movielens_fold("u1", data_home=tiny_home)


def test_unreadable_archive(tiny_zip, monkeypatch):
    _deny(monkeypatch, "open", lambda p: p == tiny_zip)
    with pytest.raises(InputError, match=rf"cannot read the archive {re.escape(str(tiny_zip))}: "
                                         r"Permission denied; make it readable"):
        load_movielens(data_home=tiny_zip)
