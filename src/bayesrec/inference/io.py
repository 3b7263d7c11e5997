"""Save and load fits (netCDF or zarr; never pickle).

A saved fit holds the posterior, the training data, the id universe, the rating
scale, the model name and config, and hashes of all of them (see
:mod:`bayesrec.inference.record`).  :func:`load_fit` recomputes the hashes, so a file
whose model description, training data or draws were edited (or corrupted) is
refused rather than silently predicting with the wrong model.

Nothing is lost when a save is interrupted (Ctrl-C, a kill, a full disk):

* the new fit is written into a work folder next to the target,
  ``.<name>.saving-<pid>-<random>``, and moved into place only once complete;
* a netCDF file replaces the old one in one atomic rename;
* a zarr store is a folder, which cannot be swapped atomically: the old store is
  first renamed to ``.<name>.previous``, the new one renamed into place, and only
  then is the old one deleted.  An interruption between the two renames puts the old
  store back; if the process was killed there, :func:`load_fit` of the path finds
  the old store under its ``.previous`` name, and the next save to the path
  restores it first.

Every save first cleans the leftovers of earlier interrupted saves to the same
path (work folders of processes that are no longer running, a stale
``.previous``).  A path that is a folder where a file is expected (or a folder
that is not a zarr store) is refused, and so is an existing fit with
``overwrite=False``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

from bayesrec.errors import InputError
from bayesrec.inference.record import GROUP, FitRecord, content_hash, rehash

__all__ = ["save_fit", "load_fit", "storable", "thinned", "previous_copy"]

_WORK_TAG = ".saving-"
_PREVIOUS_TAG = ".previous"
#: Work folders of saves running in this process (never cleaned as leftovers).
_ACTIVE: set[Path] = set()


def _format(path: Path, format: str | None) -> str:
    if format is None:
        format = "zarr" if path.suffix == ".zarr" else "netcdf"
    if format not in ("netcdf", "zarr"):
        raise InputError(f"format must be 'netcdf' or 'zarr', got {format!r}")
    return format


def storable(fit: xr.DataTree) -> xr.DataTree:
    """Object-dtype coordinates (mixed ids) are stored as strings, boolean attrs as 0/1.

    (netCDF has no boolean attributes: ``advi.attrs["converged"]`` would not save.)
    """
    out = fit.copy()
    for node in out.subtree:
        ds = node.to_dataset()
        changed = False
        if any(isinstance(v, (bool, np.bool_)) for v in ds.attrs.values()):
            ds.attrs = {k: int(v) if isinstance(v, (bool, np.bool_)) else v
                        for k, v in ds.attrs.items()}
            changed = True
        for name, coord in ds.coords.items():
            if coord.dtype == object:
                ds = ds.assign_coords({name: coord.astype(str)})
                changed = True
        if changed:
            node.dataset = ds
    return out


def thinned(fit: xr.DataTree, thin: int) -> xr.DataTree:
    """``fit`` with every ``thin``-th draw of each chain (in every group with draws), its
    hashes recomputed and ``attrs["thinned_by"]`` recorded: a smaller fit that predicts
    from fewer draws (a larger Monte Carlo error), for saving or sharing."""
    if isinstance(thin, bool) or not isinstance(thin, int | np.integer) or thin < 1:
        raise InputError(f"thin must be a positive integer, got {thin!r}")
    if thin == 1:
        return fit
    draws = fit["posterior"].sizes.get("draw", 1) if "posterior" in fit.children else 1
    if draws < thin:
        raise InputError(f"thin={thin} would keep no draw of a fit with {draws} draw(s) per "
                         "chain")
    out = fit.isel(draw=slice(None, None, thin), missing_dims="ignore")
    out.attrs["thinned_by"] = int(thin) * int(fit.attrs.get("thinned_by", 1))
    return rehash(out)


# ---------------------------------------------------------------------------------------------
# the steps of a save (module functions, so that tests can interrupt each one)
# ---------------------------------------------------------------------------------------------
def _write(tree: xr.DataTree, target: Path, fmt: str) -> None:
    if fmt == "netcdf":
        tree.to_netcdf(target, engine="h5netcdf")
    else:
        with warnings.catch_warnings():  # zarr 3: "consolidated metadata is not in the spec"
            warnings.filterwarnings("ignore", message=".*[Cc]onsolidated metadata")
            tree.to_zarr(target)


def _replace(source: Path, target: Path) -> None:
    os.replace(source, target)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# leftovers of interrupted saves
# ---------------------------------------------------------------------------------------------
def previous_copy(path: str | os.PathLike) -> Path:
    """Where a zarr save keeps the old store while it moves the new one in."""
    path = Path(path)
    return path.with_name(f".{path.name}{_PREVIOUS_TAG}")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if os.name == "nt":  # no cheap liveness test: keep other processes' folders
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _work_folders(path: Path) -> list[Path]:
    """Work folders of saves to ``path`` that are not running any more."""
    prefix = f".{path.name}{_WORK_TAG}"
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return []
    stale = []
    for entry in entries:
        if not entry.name.startswith(prefix) or entry in _ACTIVE:
            continue
        pid = entry.name[len(prefix):].split("-", 1)[0]
        if not pid.isdigit() or pid == str(os.getpid()) or not _alive(int(pid)):
            stale.append(entry)
    return stale


def _recover(path: Path) -> None:
    """Put back an old store that an interrupted save left aside; delete stale leftovers."""
    previous = previous_copy(path)
    if previous.exists():
        if path.exists():
            _remove(previous)  # the save completed; this is the superseded store
        else:
            _replace(previous, path)  # the save stopped between its two renames
    for folder in _work_folders(path):
        _remove(folder)


def _rollback(path: Path) -> None:
    """After an interrupted save: the old store back in place if it was moved aside."""
    previous = previous_copy(path)
    if not path.exists() and previous.exists():
        try:
            _replace(previous, path)
        except OSError:  # load_fit still finds it under its .previous name
            pass


# ---------------------------------------------------------------------------------------------
# save and load
# ---------------------------------------------------------------------------------------------
def _is_zarr_store(path: Path) -> bool:
    return any((path / marker).exists() for marker in ("zarr.json", ".zgroup", ".zattrs"))


def _check_target(path: Path, fmt: str, overwrite: bool) -> None:
    parent = path.parent
    if not parent.exists():
        raise InputError(f"cannot save to {path}: the folder {parent} does not exist; create it "
                         "first")
    if not parent.is_dir():
        raise InputError(f"cannot save to {path}: {parent} is a file, not a folder")
    if fmt == "netcdf" and path.is_dir():
        raise InputError(f"cannot save to {path}: it is a folder; give a file name inside it "
                         f"(for example {path / 'fit.nc'}), or a path ending in .zarr for a "
                         "zarr store")
    if fmt == "zarr" and path.exists():
        if not path.is_dir():
            raise InputError(f"cannot save a zarr store to {path}: it is a file; remove it or "
                             "choose another path")
        if not _is_zarr_store(path):
            raise InputError(f"cannot save to {path}: it is a folder that is not a zarr store, "
                             "and saving would replace it; choose another path")
    if not overwrite and (path.exists() or previous_copy(path).exists()):
        raise InputError(f"{path} exists; pass overwrite=True to replace it, or choose another "
                         "path")


def _install(new: Path, path: Path, work: Path, fmt: str, overwrite: bool) -> None:
    """Move the complete new fit into place (see the module docstring)."""
    if not overwrite and path.exists():
        raise InputError(f"{path} exists; pass overwrite=True to replace it")
    if fmt == "netcdf":
        _replace(new, path)  # atomic
        return
    previous = previous_copy(path)
    if path.exists():
        _replace(path, previous)  # the old store aside ...
    _replace(new, path)  # ... the new one in ...
    if previous.exists():
        _replace(previous, work / "superseded")  # ... and the old one deleted with `work`


def save_fit(fit: xr.DataTree, path: str | os.PathLike, *, format: str | None = None,
             overwrite: bool = True, thin: int | None = None) -> Path:
    """Write a fit to ``path`` (netCDF by default, zarr for ``.zarr`` paths).

    ``thin=k`` keeps every ``k``-th draw of each chain (:func:`thinned`): a file about
    ``k`` times smaller, whose predictions have a larger Monte Carlo error; the loaded
    fit's ``attrs["thinned_by"]`` says so.

    The fit is written next to the target and moved into place once complete, so
    an interrupted save leaves the previous fit at ``path`` (see the module
    docstring).  ``overwrite=False`` refuses to replace an existing fit.

    Raises
    ------
    InputError
        ``fit`` is not a fit; the folder is missing; ``path`` is a folder where a
        netCDF file is expected, or a folder that is not a zarr store; ``path``
        exists and ``overwrite`` is False; or the file system refused the write
        (the message gives its reason).
    """
    if not isinstance(fit, xr.DataTree) or "bayesrec" not in fit.children:
        raise InputError("save_fit needs a fit made by bayesrec.fit (a DataTree with a "
                         "'bayesrec' group)")
    path = Path(path)
    fmt = _format(path, format)
    _check_target(path, fmt, overwrite)
    tree = storable(fit if thin is None else thinned(fit, thin))
    work = None
    try:
        _recover(path)
        work = path.parent / f".{path.name}{_WORK_TAG}{os.getpid()}-{secrets.token_hex(4)}"
        work.mkdir()
        _ACTIVE.add(work)
        new = work / path.name
        _write(tree, new, fmt)
        _install(new, path, work, fmt, overwrite)
    except OSError as exc:
        _rollback(path)
        raise InputError(f"could not save the fit to {path}: {exc.strerror or exc}; check that "
                         "the folder is writable and has space") from None
    except BaseException:
        _rollback(path)
        raise
    finally:
        if work is not None:
            _ACTIVE.discard(work)
            _remove(work)
    return path


def load_fit(path: str | os.PathLike, *, verify: bool = True) -> xr.DataTree:
    """Read a fit saved by :func:`save_fit`, checking its model hash.

    The result predicts and recommends without the training data (which the
    fit carries).  ``verify=False`` skips the hash check (not recommended).  When a
    zarr save to ``path`` was killed between its two renames, the old store is
    read from where the save had put it aside (with a warning).
    """
    path = Path(path)
    if not path.exists():
        previous = previous_copy(path)
        if not previous.exists():
            raise InputError(f"no saved fit at {path}")
        warnings.warn(f"{path} is missing: a save to it was interrupted; reading the previous "
                      f"fit from {previous} (the next save to {path} puts it back)",
                      stacklevel=2)
        path = previous
    fmt = _format(path, None if path.is_file() else "zarr")
    try:
        if fmt == "netcdf":
            tree = xr.open_datatree(path, engine="h5netcdf").load()
        else:
            tree = xr.open_datatree(path, engine="zarr").load()
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"could not read a fit from {path}: {exc}") from None
    tree.close()
    if GROUP not in tree.children or "posterior" not in tree.children:
        raise InputError(f"{path} is not a bayesrec fit (it has no 'bayesrec' or 'posterior' "
                         "group)")
    for name in ("chain", "draw"):
        if name in tree["posterior"].coords:
            tree["posterior"].coords[name] = np.asarray(tree["posterior"][name].values)
    if verify:
        _verify(tree, path)
    return tree


def _verify(tree: xr.DataTree, path: Path) -> None:
    """Refuse a fit whose content does not match its recorded hashes."""
    ident = tree[GROUP].attrs
    problems = []
    if ident.get("model_hash") != FitRecord(tree).model_key():
        problems.append("the model description or training data (name, config, scale, ids, "
                        "ratings)")
    if ident.get("hash") != content_hash(tree):
        problems.append("the posterior draws")
    copies = {"bayesrec_model": "model", "bayesrec_config": "config", "bayesrec_hash": "hash"}
    edited = [root for root, key in copies.items() if tree.attrs.get(root) != ident.get(key)]
    if edited:
        raise InputError(
            f"{path}: the root attribute(s) {edited} differ from the fit's record; the file was "
            "modified, so it is refused (load_fit(..., verify=False) reads it anyway, at your "
            "own risk: the record, not the root attributes, rebuilds the model)")
    if problems:
        raise InputError(
            f"{path}: {' and '.join(problems)} does not match its recorded hash; the file was "
            "modified or corrupted, so it is refused (load_fit(..., verify=False) reads it "
            "anyway, at your own risk)"
        )
