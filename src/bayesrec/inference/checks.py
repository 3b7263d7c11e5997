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
from bayesrec.inference.draws import draw_evaluator, iter_draw_blocks
from bayesrec.inference.record import posterior_of, ratings_of_model, thin_index

__all__ = ["training_check", "degenerate_message", "warn_if_degenerate", "MAX_CHECK_DRAWS"]

#: Draws of ``mu`` the check averages (evenly thinned).
MAX_CHECK_DRAWS = 100


def training_check(fit: xr.DataTree, model: pm.Model) -> dict[str, float]:
    """``training_rmse`` (of the posterior-mean expected rating, clipped to the scale) and
    ``training_rmse_global_mean`` (of the training mean) on the fit's training ratings."""
    ratings = ratings_of_model(model)
    rating = np.asarray(ratings.rating, dtype=float)
    posterior = posterior_of(fit)
    idx = thin_index(posterior.sizes["chain"], posterior.sizes["draw"], MAX_CHECK_DRAWS)
    if idx is not None:
        posterior = posterior.isel(draw=idx)
    evaluator = draw_evaluator(model, ("mu",))
    total, count = np.zeros(len(rating)), 0
    for _, out in iter_draw_blocks(posterior[evaluator.inputs], evaluator,
                                   n_pairs=len(rating)):
        mu = out["mu"].reshape(-1, len(rating))
        total += mu.sum(0)
        count += mu.shape[0]
    mean = ratings.scale.clip(total / count)
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
