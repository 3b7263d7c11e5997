"""Reading a data set's files from a folder or a zip archive, checked against known hashes.

A :class:`LocalSource` reads whole files (the MovieLens files are small) from an
extracted folder or, in place, from a zip archive.  When it is given the known
size and SHA-256 of each file, every file is checked as it is read, so what is
parsed is exactly what was verified.  Zip members are accepted only under their
expected names (``<folder>/<name>`` or ``<name>``): an archive holding a member
with an unsafe path (``../x``, ``/x``), or one of the data set's files twice or
in another folder, is refused whether or not the files are verified.

Every problem raises :class:`~bayesrec.errors.InputError` naming the file and
the fix; nothing from :mod:`zipfile`, :mod:`zlib` or the operating system gets
through.
"""

from __future__ import annotations

import hashlib
import zipfile
import zlib
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from bayesrec.errors import InputError

__all__ = ["Checksums", "LocalSource", "is_file"]

# name -> (size in bytes, SHA-256 in hex)
Checksums = Mapping[str, tuple[int, str]]
# files read without verification are refused above this size (a zip bomb, a wrong file)
MAX_UNVERIFIED_BYTES = 256 * 2**20
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, RuntimeError,
               NotImplementedError, ValueError)


def is_file(path: Path) -> bool:
    """``path.is_file()``, with a folder that cannot be read reported as an :class:`InputError`."""
    try:
        return path.is_file()
    except OSError as exc:
        raise InputError(
            f"cannot look into {path.parent}: {exc.strerror or exc}; make that folder readable "
            "by this user (check its permissions), or load the data from another folder"
        ) from None


def _unsafe(member: str) -> bool:
    """True for a zip member name that points outside the archive's own tree."""
    parts = member.replace("\\", "/").split("/")
    drive = len(parts[0]) >= 2 and parts[0][1] == ":"
    return member.startswith(("/", "\\")) or ".." in parts or drive


class LocalSource:
    """The files of one data set, in a folder or a zip archive.

    Parameters
    ----------
    path : Path
        The folder that holds the files, or the zip archive.
    names : collection of str
        The file names the loader may read; zip members with these names are
        checked for duplicates and unexpected folders.
    checksums : mapping or None
        ``name -> (size, sha256)`` of the genuine files; ``None`` reads without
        verification (files are then capped at ``MAX_UNVERIFIED_BYTES``).
    label : str
        The data set's name, for messages (``"MovieLens 100K"``).
    folder : str
        The folder the files sit in inside the archive (``"ml-100k"``).
    remedy : str
        What to do about a wrong file; ``{target}`` is replaced by ``path``.
    """

    def __init__(self, path: Path, *, names: Collection[str], checksums: Checksums | None,
                 label: str, folder: str, remedy: str):
        self.path = path
        self.names = frozenset(names)
        self.checksums = checksums
        self.label = label
        self.folder = folder
        self.remedy = remedy.format(target=path)
        self.is_zip = is_file(path)
        self.members = self._list_members() if self.is_zip else {}

    # ------------------------------------------------------------------------------------------
    def has(self, name: str) -> bool:
        return name in self.members if self.is_zip else is_file(self.path / name)

    def where(self, name: str) -> str:
        """Where ``name`` is read from, for messages."""
        if self.is_zip:
            return f"{self.members.get(name, name)} in the archive {self.path}"
        return str(self.path / name)

    def read(self, name: str) -> bytes:
        """The bytes of ``name``, verified when its checksum is known."""
        data = self._read_member(name) if self.is_zip else self._read_file(name)
        expected = self.checksums.get(name) if self.checksums is not None else None
        if expected is not None:
            size, sha256 = expected
            if len(data) != size:
                raise self._wrong(name, f"{len(data):,} bytes instead of {size:,}")
            got = hashlib.sha256(data).hexdigest()
            if got != sha256:
                raise self._wrong(name, f"SHA-256 {got} instead of {sha256}")
        return data

    # ------------------------------------------------------------------------------------------
    def _wrong(self, name: str, detail: str) -> InputError:
        return InputError(
            f"{self.where(name)} is not the {self.label} file {name}: it has {detail}, so the "
            f"copy is damaged or was modified. {self.remedy}"
        )

    def _limit(self, name: str, size: int) -> int:
        """How many bytes ``name`` may have, given the size it reports."""
        expected = self.checksums.get(name) if self.checksums is not None else None
        if expected is not None:
            if size != expected[0]:
                raise self._wrong(name, f"{size:,} bytes instead of {expected[0]:,}")
            return expected[0]
        if size > MAX_UNVERIFIED_BYTES:
            raise InputError(
                f"{self.where(name)} has {size:,} bytes, more than the {MAX_UNVERIFIED_BYTES:,} "
                f"read without verification: it is not a {self.label} file. {self.remedy}"
            )
        return MAX_UNVERIFIED_BYTES

    def _too_long(self, name: str, limit: int) -> InputError:
        return InputError(f"{self.where(name)} holds more than the {limit:,} bytes it declares: "
                          f"the file is damaged. {self.remedy}")

    def _read_file(self, name: str) -> bytes:
        file = self.path / name
        if not is_file(file):
            raise InputError(f"{name} is missing from {self.path}")
        try:
            limit = self._limit(name, file.stat().st_size)
            with file.open("rb") as fh:
                data = fh.read(limit + 1)
        except OSError as exc:
            raise InputError(f"cannot read {file}: {exc.strerror or exc}; make it readable by "
                             "this user (check its permissions)") from None
        if len(data) > limit:
            raise self._too_long(name, limit)
        return data

    # ------------------------------------------------------------------------------------------
    @contextmanager
    def _open_zip(self) -> Iterator[zipfile.ZipFile]:
        try:
            with self.path.open("rb") as fh, zipfile.ZipFile(fh) as zf:
                yield zf
        except InputError:  # our own checks, raised inside the block (an InputError is a ValueError)
            raise
        except OSError as exc:
            raise InputError(f"cannot read the archive {self.path}: {exc.strerror or exc}; "
                             "make it readable by this user (check its permissions)") from None
        except _ZIP_ERRORS as exc:
            raise InputError(f"cannot read the archive {self.path} ({exc}): it is not a valid "
                             f"zip archive or is damaged. {self.remedy}") from None

    def _list_members(self) -> dict[str, str]:
        """Map each of the data set's file names to its one member name in the archive."""
        with self._open_zip() as zf:
            members = zf.namelist()
        found: dict[str, list[str]] = {}
        for member in members:
            if _unsafe(member):
                raise InputError(
                    f"the archive {self.path} holds a member with an unsafe path {member!r} "
                    f"(outside the archive's folder), so it is not the {self.label} archive. "
                    f"{self.remedy}"
                )
            name = member.replace("\\", "/").rsplit("/", 1)[-1]
            if name in self.names:
                found.setdefault(name, []).append(member)
        for name, where in found.items():
            expected = (f"{self.folder}/{name}", name)
            odd = [m for m in where if m not in expected]
            if odd or len(where) > 1:
                problem = (f"{name} at an unexpected path {odd[0]!r} (expected {expected[0]!r})"
                           if odd else f"{name} more than once ({where})")
                raise InputError(f"the archive {self.path} holds {problem}, so it is not the "
                                 f"{self.label} archive. {self.remedy}")
        return {name: where[0] for name, where in found.items()}

    def _read_member(self, name: str) -> bytes:
        if name not in self.members:
            raise InputError(f"{name} is missing from the archive {self.path}")
        with self._open_zip() as zf:
            info = zf.getinfo(self.members[name])
            limit = self._limit(name, info.file_size)
            with zf.open(info) as fh:
                data = fh.read(limit + 1)
        if len(data) > limit:
            raise self._too_long(name, limit)
        return data
