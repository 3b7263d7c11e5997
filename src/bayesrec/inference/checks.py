"""A fit judged on its own training data: is it better than predicting the global mean?

A fit whose expected ratings are further from its own training ratings than the
training mean is (BPMF MAP on a small set: 1.166 against the global mean's 1.110) has
degenerated: an optimiser stuck at a poor point, a collapsed noise scale, a prior at
odds with the data.  :func:`training_check` measures it on every fit (a few hundred
thinned draws of ``mu`` at the training pairs, no sampling); :func:`fit` stores the
numbers in the fit's attrs ``training_rmse`` and ``training_rmse_global_mean`` and
warns in plain words, and :func:`~bayesrec.diagnostics.convergence_summary` flags it.
"""

from __future__ import annotations

import warnings

import numpy as np
import pymc as pm
import xarray as xr

from bayesrec.errors import FitWarning
from bayesrec.inference.draws import draw_evaluator, iter_draw_blocks, row_width
from bayesrec.inference.record import (
    posterior_of,
    ratings_of_model,
    swapped_pairs,
    thin_index,
    training_days,
)

__all__ = ["training_check", "degenerate_message", "warn_if_degenerate",
           "indistinguishable_components", "MAX_CHECK_DRAWS",
           "CHECK_BLOCK_ELEMENTS"]

#: Draws of ``mu`` the check averages (evenly thinned).
MAX_CHECK_DRAWS = 100
#: Numbers (samples x pairs x the widest row gathered per pair) in one block of the check:
#: 2**20, 8 MB of float64.  Blocks of pairs keep every array the model's graph forms per
#: pair (MMSBM's pairs x groups x levels) at a few times that, whatever the training size.
CHECK_BLOCK_ELEMENTS = 2**20


def training_check(fit: xr.DataTree, model: pm.Model) -> dict[str, float]:
    """``training_rmse`` (of the posterior-mean expected rating, clipped to the scale) and
    ``training_rmse_global_mean`` (of the training mean) on the fit's training ratings.

    The training pairs are taken a block at a time (:data:`CHECK_BLOCK_ELEMENTS`), each
    with the blocks of draws of the whole training set, so every pair's mean sums the
    same draws in the same order as one pass over all pairs would.
    """
    ratings = ratings_of_model(model)
    rating = np.asarray(ratings.rating, dtype=float)
    evaluator = draw_evaluator(model, ("mu",))
    posterior = posterior_of(fit)[evaluator.inputs]  # only what mu reads is thinned (copied)
    idx = thin_index(posterior.sizes["chain"], posterior.sizes["draw"], MAX_CHECK_DRAWS)
    if idx is not None:
        posterior = posterior.isel(draw=idx)
    ucodes = np.asarray(model["user_idx"].get_value())
    icodes = np.asarray(model["item_idx"].get_value())
    dcodes = training_days(model)
    n = len(rating)
    n_samples = posterior.sizes["chain"] * posterior.sizes["draw"]
    step = max(1, CHECK_BLOCK_ELEMENTS // (n_samples * row_width(posterior, evaluator.inputs)))
    total = np.zeros(n)
    for start in range(0, n, step):
        pairs = slice(start, min(n, start + step))
        with swapped_pairs(model, ucodes[pairs], icodes[pairs],
                           None if dcodes is None else dcodes[pairs]):
            # n_pairs=n: the draw blocks of the whole training set (the same sums)
            for _, out in iter_draw_blocks(posterior, evaluator, n_pairs=n):
                total[pairs] += out["mu"].reshape(-1, pairs.stop - pairs.start).sum(0)
    mean = ratings.scale.clip(total / n_samples)
    return {"training_rmse": float(np.sqrt(np.mean((mean - rating) ** 2))),
            "training_rmse_global_mean": float(np.std(rating))}


def degenerate_message(check: dict) -> str | None:
    """Plain words when the fit is worse than the global mean on its own training data."""
    rmse, floor = check.get("training_rmse"), check.get("training_rmse_global_mean")
    if rmse is None or floor is None or not np.isfinite(rmse):
        return ("the fit's expected ratings are not finite on its own training data"
                if rmse is not None else None)
    if rmse <= floor * (1 + 1e-6) + 1e-9:  # identical ratings: both 0
        return None
    return (f"the fit is worse than predicting the global mean on its own training data "
            f"(training RMSE {rmse:.4f} against {floor:.4f}): it has degenerated (a poor "
            "optimum, a collapsed noise scale or factors, or a prior at odds with the data); "
            "try another method (gibbs, nuts, advi), more restarts, or the model's default "
            "prior")


def warn_if_degenerate(check: dict) -> None:
    message = degenerate_message(check)
    if message:
        warnings.warn(message[0].upper() + message[1:] + ".", FitWarning, stacklevel=3)


def indistinguishable_components(report: xr.Dataset) -> str | None:
    """What to say when a staged mixture's EM left its ``weights`` and noise scales
    (``sigma``) all equal (the components' out-of-fold predictions barely differ), or
    None.  Used by the staged fit (a warning) and by the convergence summary (a flag)."""
    if "weights" not in report or "sigma" not in report:
        return None
    w = np.asarray(report["weights"].values, dtype=float).ravel()
    sd = np.asarray(report["sigma"].values, dtype=float).ravel()
    if w.size < 2 or np.ptp(w) >= 1e-3 or np.ptp(sd) >= 1e-3 * sd.mean():
        return None
    return ("the staged fit's components are indistinguishable: the EM left the weights "
            f"equal ({w.mean():.3f} each) and the noise scales equal, because the components' "
            "out-of-fold predictions barely differ; on these data the local components add "
            "nothing over the global one (too few ratings per cluster, or penalties that pull "
            "them onto it).")
