"""Save and load fits (netCDF or zarr; never pickle).

A saved fit holds the posterior, the training data, the id universe, the rating
scale, the model name and config, and hashes of all of them (see
:mod:`bayesrec.inference.record`).  :func:`load_fit` recomputes the hashes, so a file
whose model description, training data or draws were edited (or corrupted) is
refused rather than silently predicting with the wrong model.
Writes go to a temporary file that replaces the target only once complete, so an
interrupted save never leaves a half-written file in place of a good one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import xarray as xr

from bayesrec.errors import InputError
from bayesrec.inference.record import GROUP, FitRecord, content_hash

__all__ = ["save_fit", "load_fit", "storable"]


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


def save_fit(fit: xr.DataTree, path: str | os.PathLike, *, format: str | None = None) -> Path:
    """Write a fit to ``path`` (netCDF by default, zarr for ``.zarr`` paths).

    The file is written next to the target and moved into place atomically.
    """
    if not isinstance(fit, xr.DataTree) or "bayesrec" not in fit.children:
        raise InputError("save_fit needs a fit made by bayesrec.fit (a DataTree with a "
                         "'bayesrec' group)")
    path = Path(path)
    if not path.parent.exists():
        raise InputError(f"cannot save to {path}: the folder {path.parent} does not exist")
    fmt = _format(path, format)
    tree = storable(fit)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    tmp = tmp_dir / path.name
    try:
        if fmt == "netcdf":
            tree.to_netcdf(tmp, engine="h5netcdf")
            os.replace(tmp, path)
        else:
            tree.to_zarr(tmp)
            if path.exists():
                backup = tmp_dir / (path.name + ".old")
                os.replace(path, backup)
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return path


def load_fit(path: str | os.PathLike, *, verify: bool = True) -> xr.DataTree:
    """Read a fit saved by :func:`save_fit`, checking its model hash.

    The result predicts and recommends without the training data (which the
    fit carries).  ``verify=False`` skips the hash check (not recommended).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"no saved fit at {path}")
    fmt = _format(path, None if path.is_file() else "zarr")
    try:
        if fmt == "netcdf":
            tree = xr.open_datatree(path, engine="h5netcdf").load()
        else:
            tree = xr.open_datatree(path, engine="zarr").load()
    except (OSError, ValueError) as exc:
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
