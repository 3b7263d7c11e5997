r"""Staged fitting of mixture models: ``fit(model, method="staged")``.

Some mixtures are fitted better one component at a time than jointly (MPMA: its
joint MAP collapses onto one component).  A model that can be fitted so declares a
:class:`~bayesrec.models.hooks.StagedFit` in its spec: the recipe (which
components, on which ratings, how they are mixed) is the model's; this module
knows nothing about any particular model.  It validates the options, asks the
model's spec for its hook, runs it with a progress display, and returns the
point the hook found as a posterior with one chain and one draw, so that
prediction, recommendation, saving and diagnostics treat it like a MAP fit.
The hook's report becomes the fit's ``staged`` group.

The procedure the options describe: each component is fitted by penalised
(ridge) least squares, the penalties in units of the noise variance
(``factor_penalty`` on the factors of the component fitted on all ratings,
``bias_penalty`` on its biases, ``local_penalty`` pulling the other components'
factors towards it), with ``sweeps`` of alternating least squares; then the
mixture's weights and noise scales by EM (``em_maxiter``, ``em_tol``) on
predictions made out of fold: the training ratings are split into ``folds``
parts and the components refitted without each part predict it.

With ``components="gibbs"`` the procedure is Bayesian: the penalties become Gaussian
priors whose precisions are learned (Gamma hyperpriors with the penalties, times the
noise precision of the point fit, as their means), and each component is sampled by
block Gibbs from the point fit (``tune`` burn-in sweeps, then ``draws`` sweeps kept),
with the rows drawn by the Gibbs sampler's kernel
(:func:`~bayesrec.inference.gibbs.kernels.draw_rows`, given to the model's hook as
:func:`gaussian_rows`).  The EM of the weights runs on the out-of-fold posterior means,
and the noise scales are its sds less the posterior sd of those means (the draws
carry that uncertainty).  The fit is a posterior of one chain of ``draws`` draws of
every component, so prediction is, draw by draw, the mixture of the components'
predictive distributions.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Annotated, Literal

import numpy as np
import pymc as pm
import xarray as xr
from pydantic import Field

from bayesrec.errors import FitWarning, InputError
from bayesrec.inference.checks import indistinguishable_components
from bayesrec.inference.em import point_dataset
from bayesrec.inference.gibbs.kernels import csr_by, draw_rows
from bayesrec.inference.options import (
    Expect,
    MethodOptions,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
)
from bayesrec.models.registry import spec_of

__all__ = ["Options", "gaussian_rows", "run"]

Folds = Annotated[int, Field(ge=2), Expect("an integer >= 2")]


class Options(MethodOptions):
    """``factor_penalty`` (15: ridge penalty of the global factors, in units of the noise
    variance), ``bias_penalty`` (5), ``local_penalty`` (45: pull of the local components'
    factors towards the global fit), ``sweeps`` (15 sweeps of alternating least squares
    per component), ``folds`` (3: the out-of-fold split of the training ratings for
    the EM of the weights), ``em_maxiter`` (5000), ``em_tol`` (1e-9, relative increase of
    the EM objective).  The penalties are those of ``benchmarks/README.md``'s staged
    recipe for MPMA, chosen on validation splits of MovieLens 100K.

    ``components`` ("map": each component by penalised ALS, the fit one point; "gibbs":
    each component sampled by block Gibbs, Gaussian priors with learned precisions whose
    prior means are the penalties, the fit ``draws`` draws of one chain; see
    :mod:`bayesrec.models.mpma_staged_gibbs`), ``draws`` (100 kept sweeps, "gibbs" only),
    ``tune`` (50 burn-in sweeps from the ALS point, "gibbs" only; ``sweeps`` is the
    ALS's).  A "gibbs" fit samples ``folds + 1`` times (out of fold, then on all
    ratings); the EM of the weights runs on out-of-fold posterior means and the noise
    sds are its sds with the posterior variance of those means taken out (the draws
    carry it).  On
    MovieLens 100K (10 factors, 2 x 2 clusters) the u1 fit took 341 s on one core of a
    loaded shared machine (``benchmarks/results/mpma_staged.json``)."""

    factor_penalty: PositiveFloat = 15.0
    bias_penalty: PositiveFloat = 5.0
    local_penalty: PositiveFloat = 45.0
    sweeps: PositiveInt = 15
    folds: Folds = 3
    em_maxiter: PositiveInt = 5000
    em_tol: PositiveFloat = 1e-9
    components: Literal["map", "gibbs"] = "map"
    draws: PositiveInt = 100
    tune: NonNegativeInt = 50


def gaussian_rows(group: np.ndarray, n_groups: int, x: np.ndarray, y: np.ndarray,
                  penalty: np.ndarray, prior: np.ndarray, noise_precision: float,
                  eps: np.ndarray) -> np.ndarray:
    r"""One draw of every row of a Gaussian linear model (:data:`~bayesrec.models.hooks.
    GaussianRows`): :math:`\theta_g \sim \mathcal N(\text{prior}_g, (\tau
    \operatorname{diag}(\text{penalty}))^{-1})`, :math:`y_n \sim \mathcal N(x_n^\top
    \theta_{g_n}, \tau^{-1})`, by the Gibbs sampler's row kernel on the deviations
    from the prior means (each rating its own feature row); ``eps = 0`` gives the
    conditional mean."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64) - (x * prior[group]).sum(1)
    indptr, rating_row, resid = csr_by(group, n_groups, np.arange(len(y)), y)
    dim = x.shape[1]
    dev = draw_rows(indptr, rating_row, resid, np.zeros(len(y)), x, False,
                    np.diag(np.asarray(penalty, dtype=np.float64) * noise_precision),
                    np.zeros(dim), noise_precision, np.ascontiguousarray(eps, dtype=np.float64))
    return prior + dev


@contextmanager
def _progress(show: bool, total: int):
    """A callback ``stage(name)`` that advances a progress bar (or does nothing)."""
    if not show:
        yield lambda name: None
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task("staged fit", total=total)
        started = [False]

        def stage(name: str) -> None:
            if started[0]:
                bar.advance(task)
            started[0] = True
            bar.update(task, description=name)

        yield stage
        bar.update(task, completed=total)


def run(model: pm.Model, opts: dict, random_seed: int, progressbar: bool) -> dict:
    """The ``posterior`` (one chain, one draw) and the hook's ``staged`` report."""
    spec = spec_of(model)
    hook = spec.staged_fit if spec is not None else None
    if hook is None:
        name = spec.name if spec is not None else "this model (not built by build_model)"
        raise InputError(f"method 'staged' needs a model whose spec declares a staged fit "
                         f"(mpma does); {name} does not")
    with _progress(progressbar, opts["folds"] + 2) as stage:
        points, report = hook.fit(model, dict(opts), random_seed, stage, gaussian_rows)
    draws = isinstance(points, list)
    points = points if draws else [points]
    missing = sorted({rv.name for rv in model.free_RVs} - set(points[0]))
    if missing:
        raise InputError(f"the staged fit of {spec.name!r} returned no value for {missing}")
    posterior = point_dataset(model, points)
    if draws:  # one chain of draws, not one point per chain
        posterior = posterior.rename({"chain": "draw", "draw": "chain"}).transpose(
            "chain", "draw", ...)
    report = report.copy() if isinstance(report, xr.Dataset) else xr.Dataset(report)
    report.attrs["description"] = hook.description
    said = indistinguishable_components(report)
    if said is not None:
        warnings.warn(said[0].upper() + said[1:], FitWarning, stacklevel=3)
    return {"posterior": posterior, "staged": report}
