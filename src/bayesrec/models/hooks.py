"""What a model declares for inference to look up: descriptions, not inference code.

A model's spec (:class:`~bayesrec.models.registry.ModelSpec`) may carry hooks that
let a model-agnostic inference method exploit its structure:

* :class:`EMStep`: the model is a Dirichlet mixture whose MAP has a closed-form
  EM step; the hook computes the E-step's expected counts (MMSBM).
* :class:`FactorStructure`: the model is a biased matrix factorisation with
  Gaussian ratings whose factor rows have Gaussian conditionals; the block-Gibbs
  sampler and fold-in read which variables play which role and how they are
  parameterised (PMF, BPMF).
* :class:`StagedFit`: the model is a mixture whose components can be fitted one at a
  time, then mixed; the hook returns one point of every free variable, or draws of
  them when its components are sampled (``method="staged"``; MPMA, as its paper fits
  it).

Inference never asks for a model by name: it asks the model's spec for these
hooks, and refuses a method when the hook it needs is absent.  They live in the
models layer because they describe a model; they import nothing from inference.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pymc as pm
import xarray as xr

__all__ = ["EMStep", "ExpectedCounts", "FactorStructure", "GaussianRows", "StagedFit",
           "StagedPoint"]

#: ``expected_counts(model, point) -> (log_likelihood, {free variable name: counts})``,
#: ``point`` mapping each free variable's name to its (constrained) value.
ExpectedCounts = Callable[[pm.Model, dict], tuple[float, dict]]


@dataclass(frozen=True)
class EMStep:
    """How to compute a Dirichlet mixture's expected counts (the E-step of EM).

    ``expected_counts(model, point)`` returns the training log-likelihood at
    ``point`` and, for every free variable, an array of its shape holding
    ``x * d loglik / d x`` (the expected number of times each component of each
    simplex is chosen).  It reads the data from the model (its data containers and
    observed values).  ``thread_safe=True`` lets independent restarts run in
    parallel threads (worth it when the computation releases the GIL).
    """

    expected_counts: ExpectedCounts
    description: str = ""
    thread_safe: bool = False


@dataclass(frozen=True)
class FactorStructure:
    r"""The roles of a biased matrix-factorisation model's variables.

    .. math::

        r_{ui} \sim \mathcal N(m + b_u + c_i + U_u^\top V_i,\ \sigma^2)

    with, for the factor rows of each side, either a fixed prior
    ``Normal(0, s^2 I)`` (``factor_prior="fixed"``, PMF) or a hierarchical one
    ``Normal(mu, L L^T)`` with a Normal prior on ``mu`` and an LKJ-Cholesky prior on
    ``L`` (``factor_prior="hierarchical"``, BPMF); biases with a fixed prior sd, or a
    learned common sd (``bias_sd``).  Variable names follow the factories'
    convention: ``user_factors``, ``item_factors`` (or ``*_factors_std`` when
    non-centred: :math:`U = \mu + z L^\top`), ``user_bias``, ``item_bias``,
    ``offset``, ``sigma``, ``bias_sd``, ``*_factor_mean``, ``*_factor_chol``; with
    ``features``, a per-row prior mean linear in each side's features.
    Prior settings are read from the model's graph, not from here.
    """

    n_factors: int
    factor_prior: Literal["fixed", "hierarchical"]
    centred: bool = True
    biases: bool = True
    learned_bias_sd: bool = False
    #: a fixed noise sd, or None when sigma is learned; 1 with an ordinal likelihood (the
    #: latent rating's noise has unit scale)
    noise: float | None = None
    link: str = "identity"
    #: model options that give the same model with centred factors (non-centred models):
    #: the Gibbs sampler samples that twin and maps the draws back, ``z = L^{-1} (U - mu)``
    centred_options: Mapping[str, Any] | None = None
    #: "gaussian", or "ordered_probit" (ratings as level codes, a unit-variance latent
    #: rating and ordered ``cutpoints``; no ``offset``) or "ordered_logit"
    likelihood: str = "gaussian"
    #: a model option set that this structure does not describe, or None; inference that
    #: needs the structure refuses such a model
    unsupported: str | None = None
    #: the sides (``"user"``, ``"item"``) whose factor rows and biases have a prior mean
    #: linear in features: ``{side}_factors ~ N(X B (+ mu), ...)`` with ``B =
    #: {side}_feature_sd * {side}_feature_coef_std`` and ``{side}_bias ~ N(X beta, ...)``
    #: with ``beta = {side}_bias_feature_sd * {side}_bias_feature_coef_std`` (data
    #: ``{side}_features``); inference that cannot use such priors refuses them
    features: tuple[str, ...] = ()
    #: the sides (``"user"``, ``"item"``) whose factor rows gain an implicit-feedback sum in
    #: the likelihood (Koren 2008): ``U_u + |N(u)|^{-1/2} sum_{j in N(u)} y_j`` with ``y =
    #: item_implicit`` (item, factor) ~ N(0, s^2) and ``N(u)`` the items ``u`` rated in the
    #: training ratings (``"item"``: the twin with ``user_implicit``); ``{side}_factors``
    #: keep their prior.  Inference that cannot use such terms refuses them
    implicit: tuple[str, ...] = ()
    #: ``"day"`` when each rating's day is a factorisation-machine context: the linear
    #: predictor gains ``e_d + (U_u + V_i) . D_d`` (``day_bias`` (day) ~ N(0, s_e^2),
    #: ``day_factors`` (day, factor) ~ N(0, s_D^2), data ``day_idx`` (obs)), or None
    context: str | None = None


#: ``factor_structure(config) -> FactorStructure`` for a model's recorded config.
FactorStructureOf = Callable[[Mapping[str, Any]], FactorStructure]


#: ``rows(group, n_groups, x, y, penalty, prior, noise_precision, eps) -> theta``: one
#: exact draw of the rows of a Gaussian linear model, given by inference (the Gibbs
#: sampler's row kernel) to a staged fit that samples its components.  Rating ``n``
#: belongs to row ``group[n]`` with features ``x[n]`` (ratings, D) and response ``y[n]``;
#: row ``g`` has the prior ``N(prior[g], diag(1 / (penalty * noise_precision)))`` and the
#: likelihood ``N(y_n | x_n . theta_g, 1 / noise_precision)``; ``eps`` (n_groups, D) are
#: standard normal draws (zeros give the conditional mean, the ridge solution).
GaussianRows = Callable[..., np.ndarray]

#: ``staged_fit(model, options, seed, progress, rows) -> (points, report)``: ``options`` are
#: the staged method's validated options, ``progress(stage)`` names each stage as it
#: starts, ``rows`` draws Gaussian rows (:data:`GaussianRows`); ``points`` maps every free
#: variable's name to its (constrained) value, or is a list of such maps (draws of a
#: sampled staged fit), and ``report`` describes the stages (the fit's ``staged`` group).
StagedPoint = Callable[[pm.Model, Mapping[str, Any], int, Callable[[str], None], GaussianRows],
                       tuple[dict | list[dict], xr.Dataset]]


@dataclass(frozen=True)
class StagedFit:
    """How to fit a mixture model in stages: its components one at a time, then the mixture.

    ``fit(model, options, seed, progress, rows)`` reads the data and the model's settings
    from the model, fits what it fits, and returns one value of every free variable (a
    point estimate, which :func:`bayesrec.inference.fit` stores as a posterior with one
    draw), or with ``options["components"] == "gibbs"`` a list of draws of them (stored
    as one chain), and a report.  It must be deterministic given ``seed``.  The options
    it receives are the staged method's (``bayesrec.inference.staged.Options``):
    penalties of the components' least-squares fits, sweeps, folds, EM settings, and
    how the components are fitted (``components``: ``"map"`` or ``"gibbs"``, with
    ``draws`` and ``tune``).  ``rows`` is inference's exact draw of Gaussian rows
    (:data:`GaussianRows`), with which a hook samples its components by block Gibbs.
    """

    fit: StagedPoint
    description: str = ""
