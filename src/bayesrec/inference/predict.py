"""Posterior-predictive ratings and top-N recommendations from any fit.

Prediction swaps the model's data containers (``user_idx``, ``item_idx``) for the
requested pairs with :func:`pymc.set_data` and reruns the model's generative
graph over the posterior draws: nothing model-specific is rebuilt by hand.  A fit
from :func:`bayesrec.inference.fit` carries its model's name, config and training
data, so the model is rebuilt from the fit alone (for instance after loading it
from disk).
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import xarray as xr

from bayesrec.data.ratings import Ratings
from bayesrec.errors import InputError
from bayesrec.inference.fit import _quiet_pymc
from bayesrec.inference.fitdata import (
    as_ids,
    check_fit,
    encode_ids,
    fit_universe,
    model_from_fit,
    ratings_from_fit,
    swapped_pairs,
    thin_posterior,
)
from bayesrec.inference.population import extend_with_new_ids
from bayesrec.models.base import _check_n, top_n_from_scores
from bayesrec.models.registry import model_info
from bayesrec.predictions import from_draws

__all__ = ["predict", "recommend", "model_from_fit", "ratings_from_fit", "expected_ratings"]


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
    check_fit(fit)
    user_index, item_index, scale = fit_universe(fit)
    if pairs is not None:
        if users is not None or items is not None:
            raise InputError("give either pairs= or users= and items=, not both")
        users, items = pairs.user_ids, pairs.item_ids
    if users is None or items is None:
        raise InputError("predict needs users= and items= (equal-length id sequences) or pairs=")
    if unknown not in ("population", "error"):
        raise InputError(f"unknown must be 'population' or 'error', got {unknown!r}")
    strict = unknown == "error"
    (ucodes, new_users), (icodes, new_items) = (encode_ids(user_index, users, "user", strict),
                                                encode_ids(item_index, items, "item", strict))
    if len(ucodes) != len(icodes):
        raise InputError(f"mismatched lengths: {len(ucodes)} users and {len(icodes)} items")
    if len(ucodes) == 0:
        raise InputError("no pairs to predict")
    model = model if model is not None else model_from_fit(fit)
    posterior = thin_posterior(fit["posterior"].to_dataset(), max_draws, point_draws)
    if new_users or new_items:
        with _quiet_pymc(False):
            model, posterior, extended = extend_with_new_ids(
                model, posterior, new_users, new_items, random_seed=random_seed)
        user_index, item_index = extended.users, extended.items
        ucodes = user_index.get_indexer(as_ids(users)).astype(np.int64)
        icodes = item_index.get_indexer(as_ids(items)).astype(np.int64)
    with swapped_pairs(model, ucodes, icodes), _quiet_pymc(False):
        pp = pm.sample_posterior_predictive(
            xr.DataTree.from_dict({"posterior": posterior}), model=model,
            var_names=["mu", "rating"], random_seed=random_seed, progressbar=False,
            predictions=True,
        )
        prob = (_posterior_mean(model, "prob", posterior if new_users or new_items
                                else thin_posterior(fit["posterior"].to_dataset(), max_draws, 1))
                if "prob" in model.named_vars else None)
    out = pp["predictions"].to_dataset()
    rating = out["rating"].values
    if np.issubdtype(rating.dtype, np.integer) and scale.levels is not None:
        rating = scale.values_of(rating)
    return from_draws(
        as_ids(users), as_ids(items), rating, scale,
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
    check_fit(fit)
    user_index, item_index, _ = fit_universe(fit)
    users = user_index.to_numpy() if users is None else users
    known_codes, new_users = encode_ids(user_index, users, "user", strict=False)
    ucodes = known_codes
    model = model if model is not None else model_from_fit(fit)
    posterior = thin_posterior(fit["posterior"].to_dataset(), max_draws, 1)
    if new_users:  # point fits are tiled so that the population draws vary
        posterior = thin_posterior(fit["posterior"].to_dataset(), max_draws, min(max_draws or 50, 50))
        with _quiet_pymc(False):
            model, posterior, extended = extend_with_new_ids(model, posterior, new_users, [],
                                                             random_seed=0)
        ucodes = extended.users.get_indexer(as_ids(users)).astype(np.int64)
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
        with swapped_pairs(model, np.repeat(block, n_items), np.tile(np.arange(n_items), len(block))):
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
    check_fit(fit)
    scalar = np.ndim(users) == 0
    users = as_ids(users)
    model = model if model is not None else model_from_fit(fit)
    info = model_info(model)
    train = info.ratings if info is not None else ratings_from_fit(fit)
    n = _check_n(n, train.n_items)
    ucodes, mean, sd = expected_ratings(fit, users, model=model, max_draws=max_draws)
    out = top_n_from_scores(train, users, ucodes, train.scale.clip(mean), sd, n, exclude_rated)
    return out.isel(user=0) if scalar else out
