r"""Pointwise log-likelihood of a fit, and PSIS-LOO / WAIC comparison of sampled fits.

The quantity compared is the expected log pointwise predictive density of a new
rating of a training pair,

.. math::

    \mathrm{elpd} = \sum_{n=1}^{N} \log p(r_n \mid r_{-n}),

estimated from the posterior draws :math:`\theta^{(s)}` and the pointwise
log-likelihood :math:`\log p(r_n \mid \theta^{(s)})` of every training rating,
either by Pareto-smoothed importance-sampling leave-one-out cross-validation
(PSIS-LOO; Vehtari, Gelman & Gabry 2017, Vehtari et al. 2024) with
:func:`arviz.loo` and :func:`arviz.compare`, or by WAIC (Watanabe 2010).  It is
in nats, on the log scale: higher is better, and a difference between two fits
is worth attention when it is several times its standard error ``dse``.

When it is valid (checked by :func:`compare_fits`):

* the fits have posterior draws: a MAP point (one draw) has no posterior to
  reweight, so MAP and EM fits are refused;
* every fit was made on the same training ratings, in the same order: elpd is a
  sum over observations, so fits of other data are not comparable;
* the likelihoods are all densities (Gaussian ratings) or all probabilities
  (categorical levels): a density and a probability mass are on different scales;
* the draws come from the posterior: draws of an ADVI approximation give the
  LOO of the approximation, which is only approximately the posterior's
  (a warning says so; the Pareto k values then also reflect how far the
  approximation is from the posterior);
* PSIS-LOO itself flags observations whose estimate is unreliable: a Pareto
  shape :math:`\hat k > 0.7` (ArviZ uses the stricter
  :math:`\min(1 - 1/\log_{10} S, 0.7)` for :math:`S` draws); the number of such
  observations is reported for every fit.

ArviZ 1.x has no ``waic`` (arviz-stats dropped it: PSIS-LOO is at least as
accurate and comes with a diagnostic), so WAIC is computed here from the same
pointwise log-likelihood and compared with :func:`arviz.compare`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import logsumexp

from bayesrec.errors import InputError
from bayesrec.inference.loglik import add_log_likelihood
from bayesrec.inference.record import FitRecord, check_fit

__all__ = ["PARETO_K_THRESHOLD", "compare_fits"]

#: Pareto shape above which the PSIS-LOO estimate of an observation is unreliable.
PARETO_K_THRESHOLD = 0.7
#: Pointwise WAIC penalty above which WAIC is unreliable (Vehtari et al. 2017, sect. 2.2).
P_WAIC_THRESHOLD = 0.4
ADVI_METHODS = ("advi", "fullrank_advi", "minibatch_advi")
_SAMPLE_DIMS = ("chain", "draw")
_MAP_MESSAGE = "LOO/WAIC need posterior draws; a MAP fit has one"


# ---------------------------------------------------------------------------------------------
# the pointwise log-likelihood
# ---------------------------------------------------------------------------------------------
def _check_fit(fit, name: str | None = None) -> None:
    label = f"fit {name!r}" if name is not None else "the fit"
    check_fit(fit, name)
    for group in ("observed_data", "constant_data"):
        if group not in fit.children:
            raise InputError(f"{label} has no {group} group: the training data are needed for "
                             "the pointwise log-likelihood (make the fit with bayesrec.fit)")


# ---------------------------------------------------------------------------------------------
# checks on a set of fits
# ---------------------------------------------------------------------------------------------
def _training_data(fit: xr.DataTree) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user ids, item ids, observed values) of a fit's training ratings, in order."""
    observed = fit["observed_data"].to_dataset()
    if len(observed.data_vars) != 1:
        raise InputError(f"expected one observed variable, found {list(observed.data_vars)}")
    values = next(iter(observed.data_vars.values())).values
    train = FitRecord(fit).ratings  # compare raw ids: codes of other universes differ
    return np.asarray(train.user_ids), np.asarray(train.item_ids), np.asarray(values)


def _same_training_data(fits: Mapping[str, xr.DataTree]) -> None:
    names = list(fits)
    data = {name: _training_data(fits[name]) for name in names}
    discrete = [n for n in names if np.issubdtype(data[n][2].dtype, np.integer)]
    if discrete and len(discrete) < len(names):
        continuous = [n for n in names if n not in discrete]
        raise InputError(
            f"fits {discrete} have a categorical likelihood (a probability of each rating "
            f"level) and fits {continuous} a continuous one (a density of the rating): their "
            "elpd values are on different scales and cannot be compared"
        )
    ref = names[0]
    for name in names[1:]:
        (u0, i0, r0), (u1, i1, r1) = data[ref], data[name]
        if len(r0) != len(r1):
            why = f"{len(r0)} and {len(r1)} ratings"
        elif not (np.array_equal(u0.astype(str), u1.astype(str))
                  and np.array_equal(i0.astype(str), i1.astype(str))):
            why = "different (user, item) pairs or order"
        elif not np.array_equal(r0, r1):
            why = "different rating values"
        else:
            continue
        raise InputError(
            f"fits {ref!r} and {name!r} were made on different training ratings ({why}): "
            "elpd is a sum over the training ratings, so values of different data are not "
            "comparable; fit every model on the same Ratings (same split, same order)"
        )


def _check_sampled(name: str, fit: xr.DataTree) -> None:
    method = fit.attrs.get("method")
    n_draw = fit["posterior"].sizes.get("draw", 0)
    if method == "map" or n_draw <= 1:
        raise InputError(
            f"fit {name!r}: {_MAP_MESSAGE} (per restart), and a point has no posterior to "
            "reweight; compare sampled fits (nuts, gibbs), or compare point fits on held-out "
            "ratings (bayesrec.metrics.score)"
        )
    if method in ADVI_METHODS:
        warnings.warn(
            f"fit {name!r} was made by {method}: its draws come from the variational "
            "approximation, not the posterior, so PSIS-LOO/WAIC estimate the elpd of the "
            "approximation and are only approximately valid for the model (its Pareto k "
            "values also reflect how far the approximation is from the posterior); prefer "
            "nuts or gibbs fits for a comparison you rely on",
            UserWarning, stacklevel=3,
        )


# ---------------------------------------------------------------------------------------------
# elpd estimates
# ---------------------------------------------------------------------------------------------
@dataclass(kw_only=True, repr=False)
class ELPDDataWAIC(az.ELPDData):
    """WAIC results (ArviZ 1.x has no ``waic``); ``p_waic_i`` is the pointwise penalty."""

    _kind: ClassVar[str] = "waic"

    p_waic_i: xr.DataArray = None


def _pointwise(tree: xr.DataTree, var_name: str | None) -> tuple[str, xr.DataArray]:
    ds = tree["log_likelihood"].to_dataset()
    if var_name is None:
        if len(ds.data_vars) != 1:
            raise InputError(f"the log_likelihood group holds {list(ds.data_vars)}; "
                             "choose one with var_name=")
        var_name = next(iter(ds.data_vars))
    if var_name not in ds:
        raise InputError(f"no {var_name!r} in the log_likelihood group ({list(ds.data_vars)})")
    return var_name, ds[var_name].transpose(*_SAMPLE_DIMS, ...)


def _relative_ess(ll: xr.DataArray) -> float:
    """Mean relative ESS of the pointwise likelihood ``exp(ll)`` (as R's ``loo::relative_eff``).

    ArviZ's default averages the ESS of every posterior variable, which for factor
    models includes entries that are not identified (rotations); the likelihood
    is identified and is what the importance weights are made of.
    """
    n_samples = ll.sizes["chain"] * ll.sizes["draw"]
    if ll.sizes["chain"] == 1 and ll.sizes["draw"] < 4:
        return 1.0
    lik = np.exp(ll - ll.max(_SAMPLE_DIMS))
    ess = az.ess(lik, method="mean")
    ess = np.asarray(getattr(ess, "values", ess), dtype=float)
    value = float(np.nanmean(ess)) / n_samples
    return value if np.isfinite(value) and value > 0 else 1.0


def _loo(tree: xr.DataTree, var_name: str) -> az.ELPDData:
    _, ll = _pointwise(tree, var_name)
    with warnings.catch_warnings():  # the count of high k is reported instead
        warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto")
        return az.loo(tree, pointwise=True, var_name=var_name, reff=_relative_ess(ll))


def _waic(tree: xr.DataTree, var_name: str) -> ELPDDataWAIC:
    """WAIC: ``elpd_i = log mean_s p(r_i | theta_s) - var_s log p(r_i | theta_s)``."""
    _, ll = _pointwise(tree, var_name)
    stacked = ll.stack(__sample__=_SAMPLE_DIMS).transpose("__sample__", ...)
    values = stacked.values.reshape(stacked.shape[0], -1)
    n_samples, n_obs = values.shape
    if n_samples < 2:
        raise InputError(_MAP_MESSAGE)
    lppd_i = logsumexp(values, axis=0) - np.log(n_samples)
    p_i = values.var(axis=0, ddof=1)
    elpd_i = lppd_i - p_i
    template = ll.isel(chain=0, draw=0, drop=True)
    return ELPDDataWAIC(
        elpd=float(elpd_i.sum()),
        se=float(np.sqrt(n_obs * elpd_i.var())),
        p=float(p_i.sum()),
        n_samples=n_samples,
        n_data_points=n_obs,
        scale="log",
        warning=bool((p_i > P_WAIC_THRESHOLD).any()),
        good_k=None,
        elpd_i=template.copy(data=elpd_i.reshape(template.shape)).rename("elpd_i"),
        p_waic_i=template.copy(data=p_i.reshape(template.shape)).rename("p_waic_i"),
    )


# ---------------------------------------------------------------------------------------------
# the comparison
# ---------------------------------------------------------------------------------------------
def compare_fits(fits: Mapping[str, xr.DataTree], *, ic: str = "loo", method: str = "stacking",
                 max_draws: int | None = None, var_name: str | None = None) -> pd.DataFrame:
    r"""Compare sampled fits by their estimated out-of-sample predictive accuracy (elpd).

    For every fit, the pointwise log-likelihood of its training ratings
    (:func:`log_likelihood`; a ``log_likelihood`` group the fit already carries
    is used as is, which is how fits of custom models are compared) gives an
    estimate of

    .. math:: \mathrm{elpd} = \sum_n \log p(r_n \mid r_{-n}),

    the log predictive density of each training rating given all the others,
    summed: by PSIS-LOO (``ic="loo"``, :func:`arviz.loo`) or WAIC
    (``ic="waic"``, computed here: ArviZ 1.x has no ``waic``).  The fits are then
    ranked and weighted by :func:`arviz.compare`.

    Parameters
    ----------
    fits : dict of str to DataTree
        Named fits from :func:`bayesrec.inference.fit`, all on the same training
        ratings.  They are not modified.
    ic : {"loo", "waic"}
        PSIS-LOO (recommended: it has a per-observation diagnostic) or WAIC.
    method : {"stacking", "bb-pseudo-bma", "pseudo-bma"}
        How :func:`arviz.compare` computes the model weights.
    max_draws : int, optional
        Use at most this many draws per fit (evenly thinned); see
        :func:`log_likelihood`.  Ignored for fits that carry a log-likelihood.
    var_name : str, optional
        The observed variable, when a model has more than one (bayesrec models
        have one, ``rating``).

    Returns
    -------
    pandas.DataFrame
        One row per fit, best first, with ArviZ's columns: ``rank``, ``elpd``
        (nats; higher is better), ``se`` (its standard error), ``p`` (effective
        number of parameters), ``elpd_diff`` and ``dse`` (difference from the best
        fit and its standard error), ``p_worse`` (normal approximation of the
        probability that the fit predicts worse than the best), ``diag_diff``,
        ``diag_elpd`` (ArviZ's warnings), ``weight`` (stacking weights by
        default); and ``inference`` (the fit's method).  For ``ic="loo"``:
        ``n_high_k``, the number of ratings whose Pareto :math:`\hat k` exceeds
        0.7 (their LOO estimate is unreliable; many of them bias the elpd upwards)
        and ``max_k``.  For ``ic="waic"``: ``n_high_p``, the number of ratings whose
        pointwise WAIC penalty exceeds 0.4 (WAIC is then unreliable; use LOO).
        ``DataFrame.attrs`` records ``ic`` and the units (``"nats"``).

    Raises
    ------
    InputError
        A MAP (or EM) fit ("LOO/WAIC need posterior draws; a MAP fit has one"),
        fits of different training ratings, or a mix of categorical and
        continuous likelihoods.

    Warns
    -----
    UserWarning
        For ADVI fits (the draws are of an approximation: the estimate is only
        approximately valid) and for fits with ratings of Pareto k > 0.7.

    Notes
    -----
    PSIS-LOO reweights the posterior draws by :math:`1 / p(r_n \mid \theta)` to
    mimic leaving rating :math:`n` out; it is valid when the draws are from the
    posterior and each rating has little influence on it (Pareto
    :math:`\hat k \le 0.7`).  Ratings of users or items with few ratings are the
    influential ones.  The relative efficiency used in the smoothing is the mean
    ESS of the pointwise likelihood over the number of draws (not ArviZ's
    default, which averages ESS over posterior variables, including factor
    entries that are not identified).
    """
    if not isinstance(fits, Mapping) or not fits:
        raise InputError("compare_fits needs a non-empty dict of name -> fit")
    if ic not in ("loo", "waic"):
        raise InputError(f"ic must be 'loo' or 'waic', got {ic!r}")
    for name, fit in fits.items():
        _check_fit(fit, name)
        _check_sampled(name, fit)
    _same_training_data(fits)

    estimates, extra = {}, {}
    for name, fit in fits.items():
        tree = (fit if "log_likelihood" in fit.children
                else add_log_likelihood(fit, max_draws=max_draws))
        var, _ = _pointwise(tree, var_name)
        if ic == "loo":
            est = _loo(tree, var)
            k = np.asarray(est.pareto_k.values, dtype=float)
            n_high = int((k > PARETO_K_THRESHOLD).sum())
            extra[name] = {"n_high_k": n_high, "max_k": float(np.nanmax(k))}
            if n_high:
                warnings.warn(
                    f"fit {name!r}: {n_high} of {k.size} ratings have Pareto k > "
                    f"{PARETO_K_THRESHOLD} (max {np.nanmax(k):.2f}); their PSIS-LOO estimates "
                    "are unreliable and the fit's elpd may be optimistic",
                    UserWarning, stacklevel=2,
                )
        else:
            est = _waic(tree, var)
            n_high = int((est.p_waic_i.values > P_WAIC_THRESHOLD).sum())
            extra[name] = {"n_high_p": n_high}
            if n_high:
                warnings.warn(
                    f"fit {name!r}: {n_high} of {est.n_data_points} ratings have a WAIC penalty "
                    f"p_waic_i > {P_WAIC_THRESHOLD}; WAIC is unreliable there, prefer ic='loo'",
                    UserWarning, stacklevel=2,
                )
        extra[name]["inference"] = fit.attrs.get("method", "unknown")
        estimates[name] = est
    table = az.compare(estimates, method=method, round_to="none")
    table = table.join(pd.DataFrame.from_dict(extra, orient="index"))
    table.attrs.update({"ic": ic, "units": "nats", "method": method})
    return table
