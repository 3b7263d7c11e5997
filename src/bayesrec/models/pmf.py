"""Probabilistic matrix factorisation (Salakhutdinov & Mnih, NIPS 2007)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
import pymc as pm

from bayesrec.data.ratings import Ratings
from bayesrec.data.scale import RatingScale
from bayesrec.models._blocks import (
    check_likelihood,
    check_link,
    check_noise,
    check_positive,
    check_positive_int,
    factor_rows,
    likelihood_of,
    merge_priors,
    pair_data,
    rating_coords,
    with_biases,
)
from bayesrec.models._side import (
    bias_mean,
    check_context,
    check_implicit,
    day_context,
    feature_blocks,
    feature_mean,
    feature_sides,
    implicit_sides,
    implicit_sums,
    with_implicit,
)
from bayesrec.models.hooks import FactorStructure
from bayesrec.models.registry import BAYESIAN_METHODS, FastSettings, register

__all__ = ["pmf", "pmf_default_priors", "POINT_ESTIMATE_FACTOR_SCALE", "FAST_FIT"]

def pmf_default_priors(scale: RatingScale) -> dict[str, float]:
    """Default prior scales of :func:`pmf`, in rating units, for a given rating scale.

    With ``h`` the half-width of the scale (``h = 2`` for 1..5 stars), the defaults
    are ``user_factor_sd = item_factor_sd = 0.3 * sqrt(h / 2)`` (factor products
    then scale with ``h``), ``bias_sd = h / 2``, ``offset_sd = h`` and ``noise_sd = h``.
    On 1..5 stars: 0.3, 0.3, 1, 2, 2.  ``cutpoint_sd = 1`` is the prior sd of each
    cutpoint of an ordinal likelihood, in latent units (see
    :func:`~bayesrec.models._blocks.ordinal_likelihood`).  With side information:
    ``feature_coef_scale = user_factor_sd``, ``bias_feature_coef_scale = h / 4`` and
    ``implicit_sd = user_factor_sd`` (the prior means of the learned scales of the
    feature coefficients, and the implicit factors' prior sd, see
    :mod:`bayesrec.models._side`); with a day context ``day_factor_sd = user_factor_sd``
    (before ``factor_scale``) and ``day_bias_sd = h / 4``.

    The factor scale was chosen on MovieLens 100K fold u1 for posterior inference
    (NUTS and ADVI test RMSE: 0.2 gives 0.942 / 0.944, 0.3 gives 0.915 / 0.921,
    0.45 gives - / 0.930).  A MAP point estimate does better with stronger
    shrinkage on that data (0.3 overfits: 0.947; 0.2 gives 0.928): the preset
    ``"point_estimate"`` (``factor_scale=2/3``, i.e. 0.2 on 1..5 stars) gives it, when
    the user asks for it (``build_model("pmf", train, preset="point_estimate")``).  It
    is not the default because on small data it shrinks every factor to zero.
    """
    h = scale.width / 2
    factor_sd = 0.3 * float(np.sqrt(h / 2))
    return {
        "user_factor_sd": factor_sd,
        "item_factor_sd": factor_sd,
        "bias_sd": h / 2,
        "offset_sd": h,
        "noise_sd": h,
        "cutpoint_sd": 1.0,
        "feature_coef_scale": factor_sd,
        "bias_feature_coef_scale": h / 4,
        "implicit_sd": factor_sd,
        "day_factor_sd": factor_sd,
        "day_bias_sd": h / 4,
    }


#: The ``factor_scale`` of the ``"point_estimate"`` preset of PMF and MPMA (see
#: :func:`pmf_default_priors`): posterior averaging regularises, a point estimate does not.
POINT_ESTIMATE_FACTOR_SCALE = 2 / 3


#: short fits of PMF and BPMF for the demo and the contract tests
FAST_FIT = {"map": {"maxiter": 500}, "nuts": {"draws": 200, "tune": 200, "chains": 2},
            "advi": {"n": 5000, "draws": 200}, "fullrank_advi": {"n": 5000, "draws": 200},
            "minibatch_advi": {"n": 5000, "draws": 200},
            "gibbs": {"draws": 200, "tune": 100, "chains": 2}}


def pmf_factor_structure(config) -> FactorStructure:
    """PMF's variables for the block-Gibbs sampler and fold-in: fixed factor and bias priors."""
    noise = config.get("noise", "learned")
    likelihood = config.get("likelihood", "gaussian")
    if likelihood != "gaussian":  # the latent rating's noise has unit scale
        noise = 1.0
    return FactorStructure(
        n_factors=int(config["n_factors"]), factor_prior="fixed", centred=True,
        biases=bool(config.get("biases", True)), learned_bias_sd=False,
        noise=None if noise == "learned" else float(noise), link=config.get("link", "identity"),
        likelihood=likelihood, features=feature_sides(config),
        implicit=implicit_sides(config),
        context=config.get("context"),
    )


@register(
    "pmf",
    title="Probabilistic matrix factorisation",
    reference="Salakhutdinov & Mnih, Probabilistic Matrix Factorization, NIPS 2007",
    predicts="gaussian",
    default_method="map",
    methods=BAYESIAN_METHODS + ("gibbs",),
    presets={"point_estimate": {"factor_scale": POINT_ESTIMATE_FACTOR_SCALE}},
    fast=FastSettings(options={"n_factors": 3}, fit=FAST_FIT),
    factor_structure=pmf_factor_structure,
)
def pmf(
    ratings: Ratings,
    *,
    n_factors: int = 10,
    biases: bool = True,
    noise: Literal["learned"] | float = "learned",
    link: Literal["identity", "logistic"] = "identity",
    likelihood: Literal["gaussian", "ordered_probit", "ordered_logit"] = "gaussian",
    factor_scale: float = 1.0,
    user_features=None,
    item_features=None,
    implicit: Literal["user", "item", "both"] | None = None,
    context: Literal["day"] | None = None,
    priors: Mapping[str, float] | None = None,
) -> pm.Model:
    r"""Probabilistic matrix factorisation as a PyMC model.

    .. math::

        r_{ui} &\sim \mathcal N(\mu_{ui}, \sigma^2), \qquad (u, i) \text{ observed} \\
        \mu_{ui} &= g(m + b_u + c_i + U_u^\top V_i) \\
        U_u &\sim \mathcal N(0, \sigma_U^2 I_D), \quad V_i \sim \mathcal N(0, \sigma_V^2 I_D) \\
        b_u &\sim \mathcal N(0, \sigma_b^2), \quad c_i \sim \mathcal N(0, \sigma_b^2), \quad
        m \sim \mathcal N(\text{centre of scale}, \sigma_m^2) \\
        \sigma &\sim \text{HalfNormal}(s_\sigma) \text{ (learned) or fixed}

    With the identity link ``g(x) = x``; with ``link="logistic"`` (the constrained
    PMF the paper recommends for bounded ratings) ``g(x) = low + (high - low)
    \, \mathrm{logistic}(x)`` maps onto the rating scale.  ``biases=False`` drops
    ``m, b, c`` (then ``g`` applies to the dot product alone, as in the paper).

    ``likelihood="ordered_probit"`` or ``"ordered_logit"`` treats ratings as ordered
    categories instead: the rating is level :math:`k` when
    :math:`\eta_{ui} + \varepsilon` falls between learned, ordered cutpoints
    :math:`c_{k-1} < \cdot \le c_k`, with :math:`\eta_{ui} = b_u + c_i + U_u^\top V_i`
    (no offset: the cutpoints place the levels) and :math:`\varepsilon` standard normal
    or logistic (see :func:`~bayesrec.models._blocks.ordinal_likelihood`).  The model
    then gives the probability of every level (``prob``), and ``mu`` is its mean.

    MAP estimation of this model is regularised least squares with penalties
    :math:`\lambda_U = \sigma^2/\sigma_U^2` and :math:`\lambda_V = \sigma^2/\sigma_V^2`
    on the squared Frobenius norms of ``U`` and ``V`` (the paper's eq. 4).  With
    the defaults on a 1..5 scale (:math:`\sigma_U = \sigma_V = 0.3`) and
    :math:`\sigma \approx 0.9`, :math:`\lambda \approx 9`; the ``"point_estimate"``
    preset (``factor_scale=2/3``: :math:`\sigma_U = \sigma_V = 0.2`) gives
    :math:`\lambda \approx 18`.

    The likelihood gathers ``U[user_idx]`` and ``V[item_idx]`` for the observed
    pairs only; no dense users x items matrix is built.

    Parameters
    ----------
    ratings : Ratings
        Training ratings; users and items without ratings get factors from the prior.
    n_factors : int
        Latent dimension D.
    biases : bool
        Include the global offset ``m`` and the user and item biases ``b``, ``c``.
    noise : "learned" or float
        Learn the observation noise sd :math:`\sigma`, or fix it to this value.
    link : {"identity", "logistic"}
        Gaussian likelihood only.
    likelihood : {"gaussian", "ordered_probit", "ordered_logit"}
        Ratings as Gaussian measurements, or as ordered categories (any discrete scale).
    factor_scale : float
        Multiplies the default factor prior sds (not those given in ``priors``):
        below 1 shrinks the factors harder (the ``"point_estimate"`` preset: 2/3).
    user_features, item_features : None, "auto" or DataFrame
        Side information as a hierarchical prior (Porteous, Asuncion & Welling 2010;
        Simm et al. 2015, "Macau"): ``"auto"`` reads ``ratings.user_info`` /
        ``item_info``, a DataFrame is indexed by id (a row for every id of the
        universe); both are encoded by :mod:`bayesrec.data.features`.  With features
        :math:`x_u` the prior means become :math:`U_u \sim \mathcal N(x_u^\top B_U,
        \sigma_U^2 I)` and :math:`b_u \sim \mathcal N(x_u^\top \beta_U, \sigma_b^2)`,
        :math:`B_U = \lambda_U Z` with :math:`Z \sim \mathcal N(0, 1)` and a learned
        :math:`\lambda_U \sim \text{Gamma}(2, 2/s)` (the same for :math:`\beta` and
        items; non-centred, so that MAP does not collapse the scales).  The model's
        config records the encoded matrix and the encoding rules, not the DataFrame.
        Every method fits it, ``"gibbs"`` included (Gaussian ratings, identity link:
        :mod:`bayesrec.inference.gibbs.features`); fold-in refuses it for now.
    implicit : None, "user", "item" or "both"
        Implicit feedback (Koren 2008): users' factors in the likelihood gain
        :math:`|N(u)|^{-1/2} \sum_{j \in N(u)} y_j` (:math:`N(u)` the items the user
        rated in ``ratings``, :math:`y_j` = ``item_implicit`` with prior sd ``implicit_sd``);
        ``"item"`` the symmetric term for items, ``"both"`` both.  ``user_factors``
        keeps its prior; the sum is the deterministic ``user_implicit_sum``.  Every
        method fits it, ``"gibbs"`` included (Gaussian ratings:
        :mod:`bayesrec.inference.gibbs.implicit`); fold-in refuses it for now.
    context : None or "day"
        The day of each rating as a factorisation-machine context (as Rendle's
        factorisation machines use it): the linear predictor gains
        :math:`e_d + (U_u + V_i)^\top D_d` for the rating's UTC calendar day :math:`d`,
        with ``day_bias`` :math:`e_d \sim \mathcal N(0, s_e^2)` (with ``biases`` only)
        and ``day_factors`` :math:`D_d \sim \mathcal N(0, s_D^2 I)`, fixed prior sds
        ``day_bias_sd`` and ``day_factor_sd`` (:math:`U_u`, :math:`V_i` with their implicit
        sums, when the model has them).  Needs the ratings' timestamps.  The days are
        those of ``ratings`` plus a slot ``"unseen"`` that no rating uses, whose variables
        keep their prior: a rating on a day the fit has not seen (or without a time) is
        predicted with it, the population of days (:mod:`bayesrec.data.context`).  MAP,
        NUTS, (minibatch) ADVI and ``"gibbs"`` fit it (Gaussian ratings:
        :mod:`bayesrec.inference.gibbs.context`); fold-in refuses it for now.
    priors : dict, optional
        Override prior scales by name: ``user_factor_sd`` (:math:`\sigma_U`),
        ``item_factor_sd`` (:math:`\sigma_V`), ``bias_sd``, ``offset_sd``, ``noise_sd``
        (scale of the HalfNormal on :math:`\sigma`), ``cutpoint_sd``, and with side
        information ``feature_coef_scale``, ``bias_feature_coef_scale`` (the :math:`s` of
        the coefficients' learned scales), ``implicit_sd`` (the implicit factors' fixed sd),
        ``day_bias_sd``, ``day_factor_sd`` (a day context's prior sds).  Defaults:
        :func:`pmf_default_priors`, in rating units.

    Returns
    -------
    pm.Model
        Variables ``user_factors (user, factor)``, ``item_factors (item, factor)``,
        ``offset``, ``user_bias (user)``, ``item_bias (item)``, ``sigma``; deterministic
        ``mu (obs)``; observed ``rating (obs)``; data ``user_idx``, ``item_idx``.
        With features also data ``user_features (user, user_feature)``, coefficients
        ``user_feature_coef (user_feature, factor)``, ``user_bias_feature_coef
        (user_feature)`` (deterministics of their ``*_std`` free variables) and scales
        ``user_feature_sd``, ``user_bias_feature_sd`` (the same for items); with
        ``implicit`` ``item_implicit (item, factor)`` and
        ``user_implicit_sum (user, factor)`` (and/or the item-side twins); with
        ``context="day"`` data ``day_idx (obs)``, ``day_factors (day, factor)`` and
        ``day_bias (day)``.
    """
    n_factors = check_positive_int(n_factors, "n_factors")
    link, noise = check_link(link), check_noise(noise)
    likelihood = check_likelihood(likelihood, ratings, link=link, noise=noise)
    factor_scale = check_positive(factor_scale, "factor_scale")
    defaults = pmf_default_priors(ratings.scale)
    for key in ("user_factor_sd", "item_factor_sd"):
        defaults[key] *= factor_scale
    p = merge_priors(defaults, priors, "pmf")
    implicit = check_implicit(implicit)
    context = check_context(context)

    with pm.Model(coords=rating_coords(ratings, factor=np.arange(n_factors))) as model:
        user_idx, item_idx = pair_data(ratings)
        side, resolved = feature_blocks(ratings, user_features, item_features, n_factors, p)
        U = factor_rows("user_factors", p["user_factor_sd"], ("user", "factor"),
                        mean=feature_mean(side, "user"))
        V = factor_rows("item_factors", p["item_factor_sd"], ("item", "factor"),
                        mean=feature_mean(side, "item"))
        sums = implicit_sums(ratings, implicit, n_factors, p)
        U, V = with_implicit(U, sums, "user"), with_implicit(V, sums, "item")
        rows = U[user_idx], V[item_idx]
        eta = (rows[0] * rows[1]).sum(axis=-1)
        day = day_context(ratings, context, biases=biases, p=p)
        if day is not None:
            eta = eta + day(*rows)
        if biases:
            eta = with_biases(eta, ratings, user_idx, item_idx, link=link,
                              offset_sd=p["offset_sd"], bias_sd=p["bias_sd"],
                              offset=likelihood == "gaussian",
                              user_mean=bias_mean(side, "user"),
                              item_mean=bias_mean(side, "item"))
        likelihood_of(eta, ratings, likelihood=likelihood, link=link, noise=noise, p=p)
    model.bayesrec_derived_options = resolved
    return model
