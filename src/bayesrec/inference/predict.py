"""Posterior-predictive ratings and top-N recommendations from any fit.

Prediction swaps the model's data containers (``user_idx``, ``item_idx``) for the
requested pairs with :func:`pymc.set_data` and reruns the model's generative
graph over the posterior draws: nothing model-specific is rebuilt by hand.  A fit
from :func:`bayesrec.inference.fit` carries its model's name, config and training
data, so the model is rebuilt from the fit alone (for instance after loading it
from disk).
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
from bayesrec.inference.fit import _quiet_pymc
from bayesrec.inference.population import extend_with_new_ids
from bayesrec.models.base import _check_n, top_n_from_scores
from bayesrec.models.registry import build_model, model_info
from bayesrec.predictions import from_draws

__all__ = ["predict", "recommend", "model_from_fit", "ratings_from_fit", "expected_ratings"]

_MODEL_CACHE: OrderedDict[str, pm.Model] = OrderedDict()
_CACHE_SIZE = 4


# ---------------------------------------------------------------------------------------------
# the fit's own record of its model and data
# ---------------------------------------------------------------------------------------------
def _check_fit(fit) -> None:
    if not isinstance(fit, xr.DataTree) or "posterior" not in fit.children:
        raise InputError(
            f"expected a fit (an xarray.DataTree with a posterior group from bayesrec.fit), "
            f"got {type(fit).__name__}"
        )
    if "bayesrec" not in fit.children:
        raise InputError("this DataTree was not made by bayesrec.fit: it has no 'bayesrec' group")


def ratings_from_fit(fit: xr.DataTree) -> Ratings:
    """The training ratings a fit was made from (its ``constant_data``/``observed_data``)."""
    _check_fit(fit)
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
    _check_fit(fit)
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


def _universe(fit: xr.DataTree) -> tuple[pd.Index, pd.Index, RatingScale]:
    ident = fit["bayesrec"].to_dataset()
    return (pd.Index(ident["user"].values), pd.Index(ident["item"].values),
            RatingScale.from_dict(json.loads(ident.attrs["scale"])))


def _as_ids(ids) -> np.ndarray:
    """Ids as a 1-d array, keeping Python types (a list [1, "a"] must not become strings)."""
    if isinstance(ids, (list, tuple)):
        return pd.Index(list(ids)).to_numpy()
    if isinstance(ids, (pd.Index, pd.Series)):
        return ids.to_numpy()
    arr = np.asarray(ids)
    return np.atleast_1d(np.asarray(ids, dtype=object) if arr.dtype == object else arr)


def _encode(index: pd.Index, ids, what: str, strict: bool) -> tuple[np.ndarray, list]:
    """Codes of ids, and the distinct ids that are new (code -1) unless ``strict``."""
    if strict:
        return _codes(index, ids, what), []
    ids = _as_ids(ids)
    if ids.ndim != 1:
        raise InputError(f"{what} ids must be one-dimensional, got shape {ids.shape}")
    codes = index.get_indexer(ids).astype(np.int64)
    new = pd.unique(np.asarray(ids, dtype=object)[codes < 0]).tolist()
    return codes, new


def _codes(index: pd.Index, ids, what: str) -> np.ndarray:
    ids = _as_ids(ids)
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


def _thin(posterior: xr.Dataset, max_draws: int | None, min_draws: int) -> xr.Dataset:
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


# ---------------------------------------------------------------------------------------------
# prediction
# ---------------------------------------------------------------------------------------------
def predict(fit: xr.DataTree, users=None, items=None, *, pairs: Ratings | None = None,
            model: pm.Model | None = None, max_draws: int | None = 1000,
            point_draws: int = 200, keep_draws: bool = True,
            unknown: str = "population", random_seed: int | None = None) -> xr.Dataset:
    """Posterior-predictive ratings for (user, item) pairs.

    Parameters
    ----------
    fit : DataTree
        A fit from :func:`bayesrec.inference.fit`.
    users, items : sequences of raw ids, equal length
        The pairs to predict.  Or give ``pairs`` (a :class:`Ratings`, e.g. a test
        split) instead.
    model : pm.Model, optional
        The fitted model; rebuilt from the fit when omitted.
    max_draws : int or None
        Use at most this many posterior draws in all (evenly thinned).
    point_draws : int
        For point fits (MAP: one draw per chain), the number of predictive
        draws sampled around the point (the plug-in predictive).
    keep_draws : bool
        Keep the per-draw ``mu`` and ``rating`` arrays (dims chain, draw, pair).
    unknown : {"population", "error"}
        Users or items the fit has never seen: predict from the population
        distribution (their variables drawn from the model given each posterior
        draw's hyperparameters, see :mod:`bayesrec.inference.population`; the
        uncertainty is correspondingly wide), or raise :class:`UnknownIdError`.
    random_seed : int, optional

    Returns
    -------
    xarray.Dataset
        The prediction format of :mod:`bayesrec.predictions`: ``mean`` (the
        posterior mean of the expected rating, clipped to the scale), ``median``,
        ``mode``, ``sd``, ``quantiles``; ``prob`` for categorical models; and the
        draws ``mu``/``rating`` (chain, draw, pair).
    """
    _check_fit(fit)
    user_index, item_index, scale = _universe(fit)
    if pairs is not None:
        if users is not None or items is not None:
            raise InputError("give either pairs= or users= and items=, not both")
        users, items = pairs.user_ids, pairs.item_ids
    if users is None or items is None:
        raise InputError("predict needs users= and items= (equal-length id sequences) or pairs=")
    if unknown not in ("population", "error"):
        raise InputError(f"unknown must be 'population' or 'error', got {unknown!r}")
    strict = unknown == "error"
    (ucodes, new_users), (icodes, new_items) = (_encode(user_index, users, "user", strict),
                                                _encode(item_index, items, "item", strict))
    if len(ucodes) != len(icodes):
        raise InputError(f"mismatched lengths: {len(ucodes)} users and {len(icodes)} items")
    if len(ucodes) == 0:
        raise InputError("no pairs to predict")
    model = model if model is not None else model_from_fit(fit)
    posterior = _thin(fit["posterior"].to_dataset(), max_draws, point_draws)
    if new_users or new_items:
        with _quiet_pymc(False):
            model, posterior, extended = extend_with_new_ids(
                model, posterior, new_users, new_items, random_seed=random_seed)
        user_index, item_index = extended.users, extended.items
        ucodes = user_index.get_indexer(_as_ids(users)).astype(np.int64)
        icodes = item_index.get_indexer(_as_ids(items)).astype(np.int64)
    with _swapped_pairs(model, ucodes, icodes), _quiet_pymc(False):
        pp = pm.sample_posterior_predictive(
            xr.DataTree.from_dict({"posterior": posterior}), model=model,
            var_names=["mu", "rating"], random_seed=random_seed, progressbar=False,
            predictions=True,
        )
        prob = (_posterior_mean(model, "prob", posterior if new_users or new_items
                                else _thin(fit["posterior"].to_dataset(), max_draws, 1))
                if "prob" in model.named_vars else None)
    out = pp["predictions"].to_dataset()
    rating = out["rating"].values
    if np.issubdtype(rating.dtype, np.integer) and scale.levels is not None:
        rating = scale.values_of(rating)
    return from_draws(
        _as_ids(users), _as_ids(items), rating, scale,
        mu_draws=out["mu"].values, prob=prob, keep_draws=keep_draws,
        attrs={"model": fit.attrs.get("bayesrec_model"), "method": fit.attrs.get("method"),
               "n_draws": int(posterior.sizes["chain"] * posterior.sizes["draw"])},
    )


def _posterior_mean(model: pm.Model, name: str, posterior: xr.Dataset) -> np.ndarray:
    """Posterior mean of a deterministic over the distinct draws, as a running sum.

    (Level probabilities are pairs x levels per draw: storing them for every
    draw, or for every repeat of a MAP point, would take gigabytes.)
    """
    fn = model.compile_fn(model[name], inputs=model.free_RVs, on_unused_input="ignore",
                          point_fn=False)
    draws = posterior.stack(sample=("chain", "draw")).transpose("sample", ...)
    values = [draws[rv.name].values for rv in model.free_RVs]
    total = 0.0
    for s in range(draws.sizes["sample"]):
        out = fn(*[v[s] for v in values])
        total = total + (out[0] if isinstance(out, list) else out)
    return total / draws.sizes["sample"]


class _swapped_pairs:
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


def expected_ratings(fit: xr.DataTree, users=None, *, model: pm.Model | None = None,
                     max_draws: int | None = 200, batch_pairs: int = 250_000) -> tuple:
    """Posterior mean and sd of the expected rating ``mu`` for every item, per user.

    Returns ``(user_codes, mean, sd)`` with ``mean``/``sd`` of shape (users, items)
    and the users' codes in the fit's universe (-1 for users it has never seen,
    whose expected ratings come from the population distribution, see
    :func:`predict`).  Batched over users; the work per batch is vectorised over
    pairs, with one loop over posterior draws accumulating running moments (no
    per-user loop).
    """
    _check_fit(fit)
    user_index, item_index, _ = _universe(fit)
    users = user_index.to_numpy() if users is None else users
    known_codes, new_users = _encode(user_index, users, "user", strict=False)
    ucodes = known_codes
    model = model if model is not None else model_from_fit(fit)
    posterior = _thin(fit["posterior"].to_dataset(), max_draws, 1)
    if new_users:  # point fits are tiled so that the population draws vary
        posterior = _thin(fit["posterior"].to_dataset(), max_draws, min(max_draws or 50, 50))
        with _quiet_pymc(False):
            model, posterior, extended = extend_with_new_ids(model, posterior, new_users, [],
                                                             random_seed=0)
        ucodes = extended.users.get_indexer(_as_ids(users)).astype(np.int64)
    draws = posterior.stack(sample=("chain", "draw")).transpose("sample", ...)
    fn = model.compile_fn(model["mu"], inputs=model.free_RVs, on_unused_input="ignore",
                          point_fn=False)
    values = [draws[rv.name].values for rv in model.free_RVs]
    n_items = len(item_index)
    per_batch = max(1, batch_pairs // n_items)
    mean = np.empty((len(ucodes), n_items))
    sd = np.empty_like(mean)
    for start in range(0, len(ucodes), per_batch):
        block = ucodes[start:start + per_batch]
        with _swapped_pairs(model, np.repeat(block, n_items), np.tile(np.arange(n_items), len(block))):
            total = np.zeros(len(block) * n_items)
            total_sq = np.zeros_like(total)
            for s in range(draws.sizes["sample"]):
                mu = fn(*[v[s] for v in values])
                mu = mu[0] if isinstance(mu, list) else mu
                total += mu
                total_sq += mu * mu
        n = draws.sizes["sample"]
        m = total / n
        mean[start:start + len(block)] = m.reshape(len(block), n_items)
        var = np.maximum(total_sq / n - m * m, 0.0) * (n / max(n - 1, 1))
        sd[start:start + len(block)] = np.sqrt(var).reshape(len(block), n_items)
    return known_codes, mean, sd


def recommend(fit: xr.DataTree, users, n: int = 10, *, exclude_rated: bool = True,
              model: pm.Model | None = None, max_draws: int | None = 200) -> xr.Dataset:
    """Top-``n`` items for one or many users, by posterior mean expected rating.

    Returns a Dataset over (``user``, ``rank``) with the recommended ``item`` ids,
    their posterior ``mean`` expected rating and its posterior ``sd`` (uncertainty
    about the user's expected rating, not rating noise).  Items the user rated in
    training are excluded by default.
    """
    _check_fit(fit)
    scalar = np.ndim(users) == 0
    users = _as_ids(users)
    model = model if model is not None else model_from_fit(fit)
    info = model_info(model)
    train = info.ratings if info is not None else ratings_from_fit(fit)
    n = _check_n(n, train.n_items)
    ucodes, mean, sd = expected_ratings(fit, users, model=model, max_draws=max_draws)
    out = top_n_from_scores(train, users, ucodes, train.scale.clip(mean), sd, n, exclude_rated)
    return out.isel(user=0) if scalar else out
