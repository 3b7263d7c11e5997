"""What a fit records, and the helpers every consumer of fits shares.

A fit from :func:`bayesrec.inference.fit` carries its model's name and config, its
training ratings and its id universe (the ``bayesrec``, ``constant_data`` and
``observed_data`` groups).  This module reads them back (:func:`check_fit`,
:func:`ratings_from_fit`, :func:`model_from_fit`, :func:`fit_universe`), turns raw ids
into the fit's codes (:func:`id_codes`, :func:`encode_ids`), thins draws
(:func:`thin_index`, :func:`thin_posterior`) and points a model's data containers at
other pairs (:class:`swapped_pairs`).  Prediction, fold-in, diagnostics and the
model tools use these instead of each reading the fit its own way.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr

from bayesrec.data.ratings import Ratings
from bayesrec.data.scale import RatingScale
from bayesrec.errors import InputError, UnknownIdError
from bayesrec.models.registry import build_model

__all__ = [
    "as_ids",
    "check_fit",
    "encode_ids",
    "fit_universe",
    "id_codes",
    "model_from_fit",
    "ratings_from_fit",
    "swapped_pairs",
    "thin_index",
    "thin_posterior",
]

_MODEL_CACHE: OrderedDict[str, pm.Model] = OrderedDict()
_CACHE_SIZE = 4


def check_fit(fit) -> None:
    if not isinstance(fit, xr.DataTree) or "posterior" not in fit.children:
        raise InputError(
            f"expected a fit (an xarray.DataTree with a posterior group from bayesrec.fit), "
            f"got {type(fit).__name__}"
        )
    if "bayesrec" not in fit.children:
        raise InputError("this DataTree was not made by bayesrec.fit: it has no 'bayesrec' group")


def ratings_from_fit(fit: xr.DataTree) -> Ratings:
    """The training ratings a fit was made from (its ``constant_data``/``observed_data``)."""
    check_fit(fit)
    ident = fit["bayesrec"].to_dataset()
    scale_dict = json.loads(ident.attrs["scale"])
    if scale_dict is None:
        raise InputError("this fit does not record a rating scale (was it built by build_model?)")
    scale = RatingScale.from_dict(scale_dict)
    const = fit["constant_data"].to_dataset()
    observed = fit["observed_data"].to_dataset()["rating"].values
    if np.issubdtype(observed.dtype, np.integer) and scale.levels is not None:
        observed = scale.values_of(observed)  # categorical models observe level codes
    return Ratings(
        user=const["user_idx"].values.astype(np.int64),
        item=const["item_idx"].values.astype(np.int64),
        rating=np.asarray(observed, dtype=float),
        users=pd.Index(ident["user"].values),
        items=pd.Index(ident["item"].values),
        scale=scale,
    )


def model_from_fit(fit: xr.DataTree) -> pm.Model:
    """Rebuild (and cache) the PyMC model a fit came from, from the fit alone."""
    check_fit(fit)
    name = fit.attrs.get("bayesrec_model", "custom")
    if name == "custom":
        raise InputError("this fit is of a custom model; pass the model: predict(fit, ..., model=m)")
    train = ratings_from_fit(fit)
    # the key covers the training data itself: two fits with the same ids and config (say,
    # k-fold fits made within the same second) must not share a model
    digest = hashlib.sha256()
    for array in (train.user, train.item, train.rating):
        digest.update(np.ascontiguousarray(array).tobytes())
    key = fit.attrs.get("bayesrec_hash", "") + digest.hexdigest()
    if key in _MODEL_CACHE:
        _MODEL_CACHE.move_to_end(key)
        return _MODEL_CACHE[key]
    config = json.loads(fit.attrs["bayesrec_config"])
    model = build_model(name, train, **config)
    _MODEL_CACHE[key] = model
    while len(_MODEL_CACHE) > _CACHE_SIZE:
        _MODEL_CACHE.popitem(last=False)
    return model


def fit_universe(fit: xr.DataTree) -> tuple[pd.Index, pd.Index, RatingScale]:
    ident = fit["bayesrec"].to_dataset()
    return (pd.Index(ident["user"].values), pd.Index(ident["item"].values),
            RatingScale.from_dict(json.loads(ident.attrs["scale"])))


def as_ids(ids) -> np.ndarray:
    """Ids as a 1-d array, keeping Python types (a list [1, "a"] must not become strings)."""
    if isinstance(ids, (list, tuple)):
        return pd.Index(list(ids)).to_numpy()
    if isinstance(ids, (pd.Index, pd.Series)):
        return ids.to_numpy()
    arr = np.asarray(ids)
    return np.atleast_1d(np.asarray(ids, dtype=object) if arr.dtype == object else arr)


def encode_ids(index: pd.Index, ids, what: str, strict: bool) -> tuple[np.ndarray, list]:
    """Codes of ids, and the distinct ids that are new (code -1) unless ``strict``."""
    if strict:
        return id_codes(index, ids, what), []
    ids = as_ids(ids)
    if ids.ndim != 1:
        raise InputError(f"{what} ids must be one-dimensional, got shape {ids.shape}")
    codes = index.get_indexer(ids).astype(np.int64)
    new = pd.unique(np.asarray(ids, dtype=object)[codes < 0]).tolist()
    return codes, new


def id_codes(index: pd.Index, ids, what: str) -> np.ndarray:
    ids = as_ids(ids)
    if ids.ndim != 1:
        raise InputError(f"{what} ids must be one-dimensional, got shape {ids.shape}")
    codes = index.get_indexer(ids)
    if (codes < 0).any():
        bad = pd.unique(np.asarray(ids, dtype=object)[codes < 0])
        raise UnknownIdError(
            f"unknown {what} id(s) {bad[:5].tolist()}: not among the {len(index)} {what}s "
            "this model was fitted with"
        )
    return codes.astype(np.int64)


def thin_index(n_chain: int, n_draw: int, max_draws: int | None) -> np.ndarray | None:
    """Evenly spaced draw positions (the same in every chain) keeping at most ``max_draws``
    draws in all, or None when all of them fit."""
    if max_draws is None or n_chain * n_draw <= max_draws:
        return None
    per_chain = max(1, max_draws // n_chain)
    return np.unique(np.linspace(0, n_draw - 1, per_chain).round().astype(int))


def thin_posterior(posterior: xr.Dataset, max_draws: int | None, min_draws: int) -> xr.Dataset:
    """At most ``max_draws`` draws in all (evenly spaced per chain); point fits are tiled.

    A MAP fit has one draw per chain: its predictive is the plug-in distribution,
    so the points are repeated to give ``min_draws`` draws in all (shared between
    the chains, e.g. MAP restarts) to sample rating noise.
    """
    n_chain, n_draw = posterior.sizes["chain"], posterior.sizes["draw"]
    if n_draw == 1 and min_draws > 1:
        per_chain = max(1, -(-min_draws // n_chain))
        return posterior.isel(draw=np.zeros(per_chain, dtype=int)).assign_coords(
            draw=np.arange(per_chain))
    idx = thin_index(n_chain, n_draw, max_draws)
    return posterior if idx is None else posterior.isel(draw=idx)


class swapped_pairs:
    """Context manager: point the model's ``user_idx``/``item_idx`` at other pairs."""

    def __init__(self, model: pm.Model, ucodes: np.ndarray, icodes: np.ndarray):
        for name in ("user_idx", "item_idx"):
            if name not in model.named_vars:
                raise InputError(
                    f"the model has no data container {name!r}; bayesrec models declare "
                    "pm.Data('user_idx', ...) and pm.Data('item_idx', ...) with dims 'obs'"
                )
        self.model, self.new = model, {"user_idx": ucodes, "item_idx": icodes}

    def __enter__(self):
        m = self.model
        self.old = {k: m[k].get_value() for k in self.new}
        self.old_obs = m.coords.get("obs")
        pm.set_data(self.new, model=m, coords={"obs": np.arange(len(self.new["user_idx"]))})
        return self

    def __exit__(self, *exc):
        pm.set_data(self.old, model=self.model, coords={"obs": np.asarray(self.old_obs)})
        return False
