"""Posterior-predictive ratings and top-N recommendations from any fit.

Prediction swaps the model's data containers (``user_idx``, ``item_idx``) for the
requested pairs with :func:`pymc.set_data` and reruns the model's generative
graph over the posterior draws: nothing model-specific is rebuilt by hand.  A fit
from :func:`bayesrec.inference.fit` carries its model's name, config and training
data, so the model is rebuilt from the fit alone (for instance after loading it
from disk); a fit of a model that :func:`~bayesrec.models.build_model` did not make
predicts given ``model=``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr

from bayesrec.data.ids import id_array
from bayesrec.data.ratings import Ratings
from bayesrec.errors import InputError, UnknownIdError
from bayesrec.inference.population import extend_with_new_ids
from bayesrec.inference.progress import quiet_pymc
from bayesrec.inference.record import FitRecord, swapped_pairs
from bayesrec.predictions import from_draws
from bayesrec.ranking import check_n, top_n_from_scores

__all__ = ["predict", "recommend", "expected_ratings", "pair_ids"]


# ---------------------------------------------------------------------------------------------
# the pairs asked for
# ---------------------------------------------------------------------------------------------
def _as_ids(ids, what: str) -> np.ndarray:
    """Ids as a 1-d array that keeps each id's own type (no conversion between types)."""
    try:
        return id_array(ids)
    except InputError:
        raise InputError(f"{what} ids must be one-dimensional, got shape {np.shape(ids)}") from None


def pair_ids(users=None, items=None, pairs=None) -> tuple[np.ndarray, np.ndarray]:
    """The (user, item) id pairs asked for: ``users=``/``items=`` sequences, or ``pairs=`` a
    :class:`~bayesrec.data.Ratings` (a test split) or a DataFrame with ``user`` and ``item``
    columns."""
    if pairs is not None:
        if users is not None or items is not None:
            raise InputError("give either pairs= or users= and items=, not both")
        if isinstance(pairs, Ratings):
            users, items = pairs.user_ids, pairs.item_ids
        elif isinstance(pairs, pd.DataFrame):
            missing = [c for c in ("user", "item") if c not in pairs.columns]
            if missing:
                raise InputError(f"pairs= as a DataFrame needs columns 'user' and 'item'; it "
                                 f"lacks {missing} (its columns are {list(pairs.columns)})")
            users, items = pairs["user"], pairs["item"]
        else:
            raise InputError(f"pairs= must be a bayesrec.Ratings (a test split) or a DataFrame "
                             f"with 'user' and 'item' columns, got {type(pairs).__name__}")
    if users is None or items is None:
        raise InputError("predict needs users= and items= (equal-length id sequences) or pairs=")
    users, items = _as_ids(users, "user"), _as_ids(items, "item")
    if len(users) != len(items):
        raise InputError(f"mismatched lengths: {len(users)} users and {len(items)} items")
    if len(users) == 0:
        raise InputError("no pairs to predict")
    return users, items


def _new_ids(ids: np.ndarray, codes: np.ndarray) -> list:
    return pd.unique(ids[codes < 0]).tolist()


def _warn_population(new_users: list, new_items: list) -> None:
    parts = [f"{len(ids)} {what}(s) ({', '.join(map(repr, ids[:3]))}"
             f"{', ...' if len(ids) > 3 else ''})"
             for what, ids in (("user", new_users), ("item", new_items)) if ids]
    warnings.warn(
        f"{' and '.join(parts)} the fit has never seen: predicted from the population "
        "distribution (wide intervals). Pass unknown='error' to refuse them instead.",
        UserWarning, stacklevel=3)


def _encode(record: FitRecord, users, items, unknown: str):
    """Codes of the pairs in the fit's universe, and the distinct unknown ids."""
    if unknown not in ("population", "error"):
        raise InputError(f"unknown must be 'population' or 'error', got {unknown!r}")
    train = record.ratings
    ucodes = train.user_codes_of(users, unknown="mask")
    icodes = train.item_codes_of(items, unknown="mask")
    new_users, new_items = _new_ids(users, ucodes), _new_ids(items, icodes)
    if unknown == "error" and (new_users or new_items):
        parts = [f"{what} id(s) {ids[:5]}" + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
                 for what, ids in (("user", new_users), ("item", new_items)) if ids]
        raise UnknownIdError(f"unknown {' and unknown '.join(parts)}: not among the "
                             f"{train.n_users} users and {train.n_items} items this model was "
                             "fitted with")
    return ucodes, icodes, new_users, new_items


# ---------------------------------------------------------------------------------------------
# prediction
# ---------------------------------------------------------------------------------------------
def predict(fit: xr.DataTree, users=None, items=None, *, pairs=None,
            model: pm.Model | None = None, max_draws: int | None = 1000,
            point_draws: int = 200, keep_draws: bool = True,
            unknown: str = "population", random_seed: int | None = None) -> xr.Dataset:
    """Posterior-predictive ratings for (user, item) pairs.

    Parameters
    ----------
    fit : DataTree
        A fit from :func:`bayesrec.inference.fit`.
    users, items : sequences of raw ids, equal length
        The pairs to predict.  Or give ``pairs``: a :class:`Ratings` (e.g. a test
        split) or a DataFrame with ``user`` and ``item`` columns.
    model : pm.Model, optional
        The fitted model; rebuilt from the fit when omitted (needed for fits of
        models that :func:`~bayesrec.models.build_model` did not make).
    max_draws : int or None
        Use at most this many posterior draws in all (evenly thinned).
    point_draws : int
        For point fits (MAP: one draw per chain), the number of predictive
        draws sampled around the point (the plug-in predictive).
    keep_draws : bool
        Keep the per-draw ``mu`` and ``rating`` arrays (dims chain, draw, pair).
    unknown : {"population", "error"}
        Users or items the fit has never seen: predict them from the population
        distribution (their variables drawn from the model given each posterior
        draw's hyperparameters, see :mod:`bayesrec.inference.population`; the
        uncertainty is correspondingly wide), with a warning that names them, or
        raise :class:`UnknownIdError`.  Ids are matched by value and type: ``"1"``
        is not the user ``1``, and asking for it raises an error that says so.
    random_seed : int, optional
        Seed of the predictive draws; by default one derived from the fit's own seed,
        so that repeated calls give the same numbers.

    Returns
    -------
    xarray.Dataset
        The prediction format of :mod:`bayesrec.predictions`: ``mean`` (the
        posterior mean of the expected rating, clipped to the scale), ``median``,
        ``mode``, ``sd``, ``quantiles``; ``prob`` for categorical models; and the
        draws ``mu``/``rating`` (chain, draw, pair).
    """
    record = FitRecord(fit)
    users, items = pair_ids(users, items, pairs)
    ucodes, icodes, new_users, new_items = _encode(record, users, items, unknown)
    seed = record.default_seed("predict") if random_seed is None else random_seed
    model = record.model(model)
    scale = record.scale
    posterior = record.posterior(max_draws, point_draws)
    if new_users or new_items:
        _warn_population(new_users, new_items)
        with quiet_pymc():
            model, posterior, extended = extend_with_new_ids(
                model, posterior, new_users, new_items, random_seed=seed)
        ucodes, icodes = extended.user_codes_of(users), extended.item_codes_of(items)
    with swapped_pairs(model, ucodes, icodes), quiet_pymc():
        pp = pm.sample_posterior_predictive(
            xr.DataTree.from_dict({"posterior": posterior}), model=model,
            var_names=["mu", "rating"], random_seed=seed, progressbar=False,
            predictions=True,
        )
        prob = (_posterior_mean(model, "prob", posterior if new_users or new_items
                                else record.posterior(max_draws))
                if "prob" in model.named_vars else None)
    out = pp["predictions"].to_dataset()
    rating = out["rating"].values
    if np.issubdtype(rating.dtype, np.integer) and scale.levels is not None:
        rating = scale.values_of(rating)
    return from_draws(
        users, items, rating, scale, mu_draws=out["mu"].values, prob=prob,
        keep_draws=keep_draws,
        attrs={"model": record.model_name, "method": record.method,
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


# ---------------------------------------------------------------------------------------------
# expected ratings of every item, and recommendations
# ---------------------------------------------------------------------------------------------
def expected_ratings(fit: xr.DataTree, users=None, *, model: pm.Model | None = None,
                     max_draws: int | None = 200, batch_pairs: int = 250_000,
                     unknown: str = "population") -> tuple:
    """Posterior mean and sd of the expected rating ``mu`` for every item, per user.

    Returns ``(user_codes, mean, sd)`` with ``mean``/``sd`` of shape (users, items)
    and the users' codes in the fit's universe (-1 for users it has never seen,
    whose expected ratings come from the population distribution, see
    :func:`predict`).  Batched over users; the work per batch is vectorised over
    pairs, with one loop over posterior draws accumulating running moments (no
    per-user loop).
    """
    record = FitRecord(fit)
    users = record.users.to_numpy() if users is None else _as_ids(users, "user")
    known_codes, _, new_users, _ = _encode(record, users, np.array([], dtype=object), unknown)
    ucodes = known_codes
    model = record.model(model)
    posterior = record.posterior(max_draws)
    if new_users:  # point fits are tiled so that the population draws vary
        _warn_population(new_users, [])
        posterior = record.posterior(max_draws, min(max_draws or 50, 50))
        with quiet_pymc():
            model, posterior, extended = extend_with_new_ids(
                model, posterior, new_users, [], random_seed=record.default_seed("population"))
        ucodes = extended.user_codes_of(users)
    draws = posterior.stack(sample=("chain", "draw")).transpose("sample", ...)
    fn = model.compile_fn(model["mu"], inputs=model.free_RVs, on_unused_input="ignore",
                          point_fn=False)
    values = [draws[rv.name].values for rv in model.free_RVs]
    n_items = record.ratings.n_items
    per_batch = max(1, batch_pairs // n_items)
    mean = np.empty((len(ucodes), n_items))
    sd = np.empty_like(mean)
    for start in range(0, len(ucodes), per_batch):
        block = ucodes[start:start + per_batch]
        with swapped_pairs(model, np.repeat(block, n_items), np.tile(np.arange(n_items),
                                                                     len(block))):
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
              model: pm.Model | None = None, max_draws: int | None = 200,
              unknown: str = "population") -> xr.Dataset:
    """Top-``n`` items for one or many users, by the posterior mean expected rating.

    Items are ranked on the expected rating itself (not clipped to the scale, so
    that items predicted above the top of the scale still rank in order) and
    reported with its value clipped to the scale (``mean``) and its posterior ``sd``
    (uncertainty about the user's expected rating, not rating noise).  Items the
    user rated in training are excluded by default.  ``unknown`` is as for
    :func:`predict`.
    """
    record = FitRecord(fit)
    scalar = np.ndim(users) == 0
    users = _as_ids(users, "user")
    train = record.ratings
    n = check_n(n, train.n_items)
    ucodes, mean, sd = expected_ratings(fit, users, model=model, max_draws=max_draws,
                                        unknown=unknown)
    out = top_n_from_scores(train, users, ucodes, mean, sd, n, exclude_rated,
                            reported=train.scale.clip(mean))
    return out.isel(user=0) if scalar else out
