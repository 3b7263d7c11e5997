"""Where results are written: destinations checked before any fit, never over an input.

The command line checks every file and folder it will write before it loads data
or fits anything (:func:`check_output_file`, :func:`check_output_folder`):

* never an input: a destination is compared with every file or folder read
  (resolved paths, so through symbolic links, and the same file under another name,
  a hard link or another case, by inode); a destination inside an input folder
  (the MovieLens folder, a zarr fit) is refused too;
* never a folder where a file is expected, nor a file where a folder is;
* the nearest existing folder on the way must accept a new file (probed by creating
  and deleting one, which also catches read-only file systems and folders that
  ``root`` may not write);
* an existing file is replaced only with ``overwrite=True``.

The fits an evaluation saves are named after the run (:func:`run_id`: a short hash
of the model, method, resolved options, seed and data), so two runs into one folder
never take each other's files.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

from bayesrec.errors import InputError
from bayesrec.evaluation.records import jsonable

__all__ = [
    "check_output_file",
    "check_output_folder",
    "fit_file_name",
    "fallback_folder",
    "run_id",
    "same_file",
]


def _resolved(path: Path) -> Path:
    return path.expanduser().resolve()  # symbolic links first, then "..", as the OS does


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when ``a`` and ``b`` name the same file or folder (resolved, or the same inode)."""
    a, b = Path(a).expanduser(), Path(b).expanduser()
    if _resolved(a) == _resolved(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one does not exist (yet)
        return False


def _inside(path: Path, folder: Path) -> bool:
    """True when ``path`` is ``folder`` or lies inside it (resolved paths)."""
    try:
        _resolved(path).relative_to(_resolved(folder))
    except ValueError:
        return False
    return True


def _probe(folder: Path) -> None:
    """Create and delete a file in ``folder``; raises OSError when it is not writable."""
    with tempfile.TemporaryFile(dir=folder, prefix=".bayesrec-probe-"):
        pass


def _existing_ancestor(path: Path) -> Path:
    for candidate in (path, *path.parents):
        try:
            if candidate.exists():
                return candidate
        except OSError:  # cannot look: the probe below says why
            return candidate
    return Path(".")


def _check_writable(folder: Path, what: str, path: Path) -> None:
    """The nearest existing folder on the way to ``folder`` must accept a new file."""
    ancestor = _existing_ancestor(folder)
    if ancestor.exists() and not ancestor.is_dir():
        raise InputError(f"cannot write {what} {path}: {ancestor} is a file, not a folder")
    try:
        _probe(ancestor)
    except OSError as exc:
        raise InputError(f"cannot write {what} {path}: the folder {ancestor} is not writable "
                         f"({exc.strerror or exc}); choose a folder you can write") from None


def _check_not_input(path: Path, inputs: Iterable, what: str) -> None:
    for source in inputs:
        source = Path(source).expanduser()
        if same_file(path, source):
            raise InputError(f"{what} {path} would be written over an input ({source}); "
                             "choose another path")
        if source.is_dir() and _inside(path, source):
            raise InputError(f"{what} {path} lies inside an input ({source}), which must not "
                             "change; choose another path")


def check_output_file(path: str | os.PathLike, *, what: str, inputs: Iterable = (),
                      overwrite: bool = False, claimed: Iterable = ()) -> Path:
    """Check a file that will be written; returns it as a Path.

    Raises :class:`InputError` when it is (or lies inside) one of ``inputs``, is one of
    the ``claimed`` destinations of the same run, is a folder, exists while
    ``overwrite`` is False, or its folder cannot be created or written.
    """
    target = Path(path).expanduser()
    _check_not_input(target, inputs, what)
    for other in claimed:
        if same_file(target, other):
            raise InputError(f"{what} {path} is also where another output goes ({other}); "
                             "give each output its own path")
    if target.is_dir():
        raise InputError(f"{what} {path} is a folder; give a file name (for example "
                         f"{target / 'results.json'})")
    if target.exists() and not overwrite:
        raise InputError(f"{what} {path} exists; pass overwrite=True to replace it, or choose "
                         "another path")
    _check_writable(target.parent, what, target)
    return target


def check_output_folder(path: str | os.PathLike, *, what: str, inputs: Iterable = ()) -> Path:
    """Check a folder that will be created (if missing) and written into."""
    target = Path(path).expanduser()
    _check_not_input(target, inputs, what)
    if target.exists() and not target.is_dir():
        raise InputError(f"{what} {path} is a file, not a folder; give a folder")
    _check_writable(target, what, target)
    return target


def run_id(settings: dict, splits: Iterable) -> str:
    """Ten hex digits naming a run: the hash of its resolved settings (model, method,
    options, fit options, seed, fast) and of every split's training and test ratings."""
    h = hashlib.sha256(json.dumps(jsonable(settings), sort_keys=True).encode())
    for name, train, test in splits:
        h.update(str(name).encode())
        for ratings in (train, test):
            h.update(ratings.fingerprint().encode())
            for array in (ratings.user, ratings.item, ratings.rating):
                h.update(array.tobytes())
    return h.hexdigest()[:10]


def fit_file_name(model: str, method: str, fold: str, run: str) -> str:
    """``<model>-<method>-<fold>-<run>.nc``, with characters unsafe in file names replaced."""
    safe = re.sub(r"[^\w.-]", "_", str(fold))
    return f"{model}-{method}-{safe}-{run}.nc"


def fallback_folder(prefix: str = "bayesrec-") -> Path:
    """A new folder in the system's temporary folder, for results that could not be
    written where asked."""
    return Path(tempfile.mkdtemp(prefix=prefix))
