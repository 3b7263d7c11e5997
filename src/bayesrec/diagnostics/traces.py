"""Per-draw and running RMSE of the expected rating, on training and test pairs.

For every posterior draw ``t`` (in draw order) and chain ``c``:

* ``rmse[c, t]``: RMSE of that draw's expected ratings ``clip(mu[c, t])``;
* ``running_rmse[c, t]``: RMSE of the running posterior mean
  ``clip(mean(mu[c, 1..t]))``: the point prediction one would make after ``t``
  draws of chain ``c``;
* ``pooled_running_rmse[t]``: the same for the running mean over every chain's
  draws ``1..t`` (``chains x t`` draws).

``clip`` is the rating scale's, as for point metrics (so the last pooled value
is the RMSE of :func:`bayesrec.inference.predict`'s ``mean``).  The expected
ratings come from the model (its ``mu``), evaluated for blocks of draws at once
by :mod:`bayesrec.inference.draws`, so this works for every
registered model and every method: a MAP fit has one draw per restart (chain),
an ADVI fit one chain.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import xarray as xr

from bayesrec.data.ratings import Ratings
from bayesrec.errors import InputError
from bayesrec.inference.draws import MAX_ELEMENTS, draw_evaluator, iter_draw_blocks
from bayesrec.inference.record import FitRecord, day_codes_of, swapped_pairs

__all__ = ["rmse_trace", "rmse_trace_from_draws", "RunningRMSE"]


class RunningRMSE:
    """Accumulates per-draw and running RMSE over blocks of draws, in draw order.

    Parameters
    ----------
    rating : array (pair,)
        The true ratings.
    low, high : float, optional
        The rating scale: predictions are clipped to it before scoring.
    """

    def __init__(self, rating, low: float | None = None, high: float | None = None):
        self.rating = np.asarray(rating, dtype=float)
        self.low, self.high = low, high
        self._total = None  # running sum of mu per chain (chain, pair)
        self._seen = 0
        self._rmse, self._running, self._pooled = [], [], []

    def _clip(self, x: np.ndarray) -> np.ndarray:
        if self.low is None and self.high is None:
            return x
        return np.clip(x, self.low, self.high)

    def _score(self, pred: np.ndarray) -> np.ndarray:
        return np.sqrt(np.mean((self._clip(pred) - self.rating) ** 2, axis=-1))

    def update(self, mu: np.ndarray) -> None:
        """Add a block of draws ``mu`` of shape (chain, draw, pair)."""
        mu = np.asarray(mu, dtype=float)
        if self._total is None:
            self._total = np.zeros((mu.shape[0], mu.shape[2]))
        cumulative = self._total[:, None, :] + np.cumsum(mu, axis=1)
        count = self._seen + np.arange(1, mu.shape[1] + 1)
        self._rmse.append(self._score(mu))
        self._running.append(self._score(cumulative / count[None, :, None]))
        pooled = cumulative.sum(axis=0) / (mu.shape[0] * count[:, None])
        self._pooled.append(self._score(pooled))
        self._total = cumulative[:, -1]
        self._seen += mu.shape[1]

    def result(self) -> dict[str, np.ndarray]:
        """``rmse`` and ``running_rmse`` (chain, draw); ``pooled_running_rmse`` (draw)."""
        return {"rmse": np.concatenate(self._rmse, axis=1),
                "running_rmse": np.concatenate(self._running, axis=1),
                "pooled_running_rmse": np.concatenate(self._pooled)}


def _dataset(results: dict[str, dict], chains, draws) -> xr.Dataset:
    splits = list(results)
    ds = xr.Dataset(
        {
            "rmse": (("split", "chain", "draw"),
                     np.stack([results[s]["rmse"] for s in splits])),
            "running_rmse": (("split", "chain", "draw"),
                             np.stack([results[s]["running_rmse"] for s in splits])),
            "pooled_running_rmse": (("split", "draw"),
                                    np.stack([results[s]["pooled_running_rmse"] for s in splits])),
        },
        coords={"split": splits, "chain": chains, "draw": draws},
    )
    ds["rmse"].attrs["long_name"] = "RMSE of each draw's expected ratings (clipped)"
    ds["running_rmse"].attrs["long_name"] = "RMSE of the running posterior mean, per chain"
    ds["pooled_running_rmse"].attrs["long_name"] = (
        "RMSE of the running posterior mean over all chains' draws 1..t")
    return ds


def rmse_trace_from_draws(mu: xr.DataArray, rating, *, low: float | None = None,
                          high: float | None = None, split: str = "test") -> xr.Dataset:
    """:func:`rmse_trace` from given expected-rating draws ``mu (chain, draw, pair)``."""
    if not isinstance(mu, xr.DataArray) or not {"chain", "draw", "pair"} <= set(mu.dims):
        raise InputError("mu must be a DataArray with dims (chain, draw, pair)")
    acc = RunningRMSE(rating, low, high)
    acc.update(mu.transpose("chain", "draw", "pair").values)
    return _dataset({split: acc.result()}, mu["chain"].values if "chain" in mu.coords
                    else np.arange(mu.sizes["chain"]),
                    mu["draw"].values if "draw" in mu.coords else np.arange(mu.sizes["draw"]))


def _pair_codes(record: FitRecord, ratings: Ratings, what: str) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(ratings, Ratings):
        raise InputError(f"{what} must be a bayesrec.Ratings, got {type(ratings).__name__}")
    if len(ratings) == 0:
        raise InputError(f"the {what} set is empty")
    train = record.ratings
    return train.user_codes_of(ratings.user_ids), train.item_codes_of(ratings.item_ids)


def rmse_trace(fit: xr.DataTree, train: Ratings | None = None, test: Ratings | None = None, *,
               model: pm.Model | None = None, max_draws: int | None = None,
               max_elements: int = MAX_ELEMENTS) -> xr.Dataset:
    """Per-draw and running RMSE on training and test ratings (see the module docstring).

    Parameters
    ----------
    fit : DataTree
        A fit from :func:`bayesrec.inference.fit` (any model, any method).
    train : Ratings, optional
        Training ratings; the fit's own training data when omitted.
    test : Ratings, optional
        Held-out ratings (ids must be in the fit's universe); omitted: train only.
    model : pm.Model, optional
        The fitted model; rebuilt from the fit when omitted.
    max_draws : int, optional
        Use at most this many draws per chain (the first ones, so that running
        means stay in draw order).
    max_elements : int
        Memory budget per block of draws.

    Returns
    -------
    xarray.Dataset
        ``rmse (split, chain, draw)``, ``running_rmse (split, chain, draw)``,
        ``pooled_running_rmse (split, draw)``, with ``split`` = ``"train"``,
        ``"test"``; attrs ``n_<split>`` (number of ratings), ``method``, ``model``.
    """
    record = FitRecord(fit)
    model = record.model(model)
    scale = record.scale
    train = train if train is not None else record.ratings
    posterior = fit["posterior"].to_dataset()
    if max_draws is not None:
        posterior = posterior.isel(draw=slice(0, int(max_draws)))
    evaluator = draw_evaluator(model, ("mu",))
    results = {}
    for split, ratings in (("train", train), ("test", test)):
        if ratings is None:
            continue
        ucodes, icodes = _pair_codes(record, ratings, split)
        acc = RunningRMSE(ratings.rating, scale.low, scale.high)
        dcodes = day_codes_of(model, ratings.timestamp, len(ucodes))
        with swapped_pairs(model, ucodes, icodes, dcodes):
            for _, out in iter_draw_blocks(posterior, evaluator, n_pairs=len(ucodes),
                                           max_elements=max_elements):
                acc.update(out["mu"])
        results[split] = acc.result()
    ds = _dataset(results, posterior["chain"].values, posterior["draw"].values)
    ds.attrs.update({f"n_{s}": len(r) for s, r in (("train", train), ("test", test))
                     if r is not None})
    ds.attrs.update({"method": record.method or "", "model": record.model_name})
    return ds
