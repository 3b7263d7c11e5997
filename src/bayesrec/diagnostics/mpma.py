"""Reading an MPMA fit: which component explains each rating."""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy.special import logsumexp

from bayesrec.data.ratings import Ratings
from bayesrec.errors import InputError
from bayesrec.inference.numerics import reproducible
from bayesrec.inference.record import FitRecord, swapped_pairs

__all__ = ["responsibilities"]


def responsibilities(fit: xr.DataTree, pairs: Ratings | None = None, *, model=None,
                     max_draws: int | None = 200) -> xr.DataArray:
    r"""Posterior probability of each MPMA component for rated pairs.

    For a rating :math:`r_{ui}` and a posterior draw,
    :math:`\gamma_k = \pi_k \mathcal N(r_{ui} \mid \mu^{(k)}_{ui}, \sigma_k^2) / \sum_j
    \pi_j \mathcal N(r_{ui} \mid \mu^{(j)}_{ui}, \sigma_j^2)`; the result averages
    :math:`\gamma` over (at most ``max_draws``) draws.  Responsibilities need the
    rating: for pairs without one, the weights ``pi`` are the answer.

    Parameters
    ----------
    fit : DataTree
        A fit of an ``mpma`` model (:func:`bayesrec.inference.fit`).
    pairs : Ratings, optional
        Rated pairs with ids in the fit's universe (default: the training ratings).
    model : pm.Model, optional
        The fitted model (rebuilt from the fit when omitted).

    Returns
    -------
    xarray.DataArray
        Dims ``(pair, component)``; coords ``user``/``item`` (raw ids) along ``pair``,
        ``component`` names; rows sum to one.
    """
    record = FitRecord(fit)
    model = record.model(model)
    if "component_mu" not in model.named_vars:
        raise InputError(f"responsibilities need an mpma fit (a model with 'component_mu'), "
                         f"got a {record.model_name!r} fit")
    train = record.ratings
    pairs = pairs if pairs is not None else train
    ucodes, icodes = train.user_codes_of(pairs.user_ids), train.item_codes_of(pairs.item_ids)
    names = list(model.coords["component"])
    draws = record.posterior(max_draws).stack(sample=("chain", "draw")).transpose("sample", ...)
    outs = [model["component_mu"], model["sigma"]]
    if len(names) > 1:
        outs.append(model["weights"])
    with reproducible():
        fn = model.compile_fn(outs, inputs=model.free_RVs, on_unused_input="ignore",
                              point_fn=False)
    values = [draws[rv.name].values for rv in model.free_RVs]
    r = np.asarray(pairs.rating, dtype=float)[:, None]
    total = np.zeros((len(r), len(names)))
    with swapped_pairs(model, ucodes, icodes):
        for s in range(draws.sizes["sample"]):
            out = fn(*[v[s] for v in values])
            mu, sigma = out[0], out[1]
            log_w = np.log(out[2]) if len(names) > 1 else np.zeros(1)
            lp = log_w - np.log(sigma) - 0.5 * ((r - mu) / sigma) ** 2
            total += np.exp(lp - logsumexp(lp, axis=1, keepdims=True))
    return xr.DataArray(
        total / draws.sizes["sample"], dims=("pair", "component"),
        coords={"user": ("pair", train.users.to_numpy()[ucodes]),
                "item": ("pair", train.items.to_numpy()[icodes]), "component": names},
        name="responsibility",
    )
