"""Mixed-membership stochastic block model for ratings (Godoy-Lorite et al., PNAS 2016)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pymc.pytensorf import extract_obs_data

from bayesrec.data.ratings import Ratings
from bayesrec.errors import InputError
from bayesrec.models._blocks import check_positive_int, merge_priors, pair_data, rating_coords
from bayesrec.models._mmsbm_kernels import expected_counts, level_logp
from bayesrec.models.hooks import EMStep
from bayesrec.models.registry import FastSettings, register

__all__ = ["mmsbm", "mmsbm_default_priors", "level_probabilities", "MMSBM_MAP_RESTARTS"]

#: MAP restarts by default: each starts from its own prior draw and becomes a chain;
#: predictions average the restarts' level probabilities, as the paper does.
MMSBM_MAP_RESTARTS = 10


def mmsbm_default_priors() -> dict[str, float]:
    """Default Dirichlet concentrations of :func:`mmsbm`.

    ``theta_concentration = eta_concentration = 1`` (flat memberships) and
    ``p_concentration = 2``: with MAP by EM a concentration ``a`` adds ``a - 1``
    pseudo-counts, here one pseudo-rating per level for each group pair's rating
    distribution (Laplace smoothing), so that a level never observed for a pair
    of groups keeps a small probability.  Chosen by accuracy and RMSE of the
    averaged MAP restarts on validation splits of the MovieLens 100K training
    folds (10 % of each ``u*.base``, never the test folds), against flat
    concentrations (the maximum-likelihood model of the paper and of the
    ``mmsbm`` package) and smoother memberships (1.25, 1.5 and 2, which make each
    restart better on its own but the average of restarts worse).
    """
    return {"theta_concentration": 1.0, "eta_concentration": 1.0, "p_concentration": 2.0}


def level_probabilities(theta_u, eta_i, p):
    """P(r = level) per pair: ``sum_kl theta_u[n, k] eta_i[n, l] p[k, l, :]`` (pairs x levels).

    Contracts ``theta_u`` with ``p`` first (pairs x L x levels) and then with
    ``eta_i``; the pairs x K x L x levels product is never formed.
    """
    n_user_groups, n_item_groups, n_levels = p.shape
    flat = pt.dot(theta_u, p.reshape((n_user_groups, n_item_groups * n_levels)))
    return (flat.reshape((theta_u.shape[0], n_item_groups, n_levels))
            * eta_i[:, :, None]).sum(axis=1)


def _rating_logp(value, theta_u, eta_i, p):
    # One fused Numba pass per rating for the observed level only (LevelLogp): all K x L
    # terms are positive, so their sum loses no precision and one log per rating is
    # exact (a log-sum-exp would cost K x L exponentials per rating).
    return level_logp(value, theta_u, eta_i, p)


def _rating_dist(theta_u, eta_i, p, size):
    # Inverse CDF: the level is the number of cumulative probabilities (all but the last,
    # which is 1) below a uniform draw.  The same law as ``pm.Categorical``, whose draw
    # with batched probabilities is a Python loop per pair (31 of the 36 s of predicting
    # 20,000 pairs from 200 draws); this one is a vectorised graph.
    prob = level_probabilities(theta_u, eta_i, p)
    u = pm.Uniform.dist(0.0, 1.0, size=prob.shape[:-1] if size is None else size)
    below = pt.lt(pt.cumsum(prob, axis=-1)[..., :-1], u[..., None])
    return below.sum(axis=-1).astype("int64")


def _em_expected_counts(model: pm.Model, point: dict) -> tuple[float, dict]:
    """E-step on the model's current data (MAP by EM, :mod:`bayesrec.inference.em`)."""
    user = np.asarray(model["user_idx"].get_value(borrow=True))
    item = np.asarray(model["item_idx"].get_value(borrow=True))
    level = np.asarray(extract_obs_data(model.rvs_to_values[model["rating"]]))
    if not len(user) == len(item) == len(level):
        raise InputError("the model's pairs were swapped for prediction; EM needs the training data")
    loglik, c_theta, c_eta, c_p = expected_counts(user, item, level, point["theta"],
                                                  point["eta"], point["p"])
    return loglik, {"theta": c_theta, "eta": c_eta, "p": c_p}


#: MMSBM's EM step: one fused Numba pass over the ratings (releases the GIL, so
#: restarts run in parallel threads).
MMSBM_EM_STEP = EMStep(_em_expected_counts, "MMSBM E-step (numba kernel)", thread_safe=True)


@register(
    "mmsbm",
    title="Mixed-membership stochastic block model",
    reference="Godoy-Lorite, Guimerà, Moore & Sales-Pardo, Accurate and scalable social "
              "recommendation using mixed-membership stochastic block models, PNAS 113(50), 2016",
    predicts="categorical",
    default_method="map",
    fit_defaults={"map": {"restarts": MMSBM_MAP_RESTARTS, "maxiter": 400}},
    fast=FastSettings(
        method="map",
        options={"n_user_groups": 4, "n_item_groups": 4},
        fit={"map": {"restarts": 2, "maxiter": 150},
             "nuts": {"draws": 200, "tune": 200, "chains": 2},
             "advi": {"n": 3000, "draws": 200, "init": "map"},
             "fullrank_advi": {"n": 3000, "draws": 200},
             "minibatch_advi": {"n": 3000, "draws": 200}},
    ),
    em_step=MMSBM_EM_STEP,
)
def mmsbm(
    ratings: Ratings,
    *,
    n_user_groups: int = 10,
    n_item_groups: int = 10,
    priors: Mapping[str, float] | None = None,
) -> pm.Model:
    r"""Mixed-membership stochastic block model of categorical ratings.

    .. math::

        P(r_{ui} = r) &= \sum_{k=1}^K \sum_{l=1}^L \theta_{uk}\, \eta_{il}\, p_{kl}(r),
        \qquad (u, i) \text{ observed} \\
        \theta_u &\sim \text{Dirichlet}(a_\theta \mathbf 1_K), \quad
        \eta_i \sim \text{Dirichlet}(a_\eta \mathbf 1_L), \quad
        p_{kl} \sim \text{Dirichlet}(a_p \mathbf 1_{R})

    Each user has a mixed membership :math:`\theta_u` over K user groups, each
    item :math:`\eta_i` over L item groups, and each pair of groups a categorical
    distribution :math:`p_{kl}` over the R rating levels.  The group of the user
    and of the item in each rating are marginalised (the sum above), so the
    free variables are the three sets of simplexes.  Ratings are categories:
    any discrete scale works (half stars, 1..10); the order of the levels is not
    used.  A continuous scale raises :class:`InputError`.

    The paper fits the model by maximum likelihood with EM (no priors); here the
    Dirichlet priors make it Bayesian, and with all concentrations 1 the MAP is
    the paper's estimate.  The MAP is found by EM (see
    :mod:`bayesrec.inference.em`; a Numba kernel does each E-step in one pass
    over the ratings), from several random restarts whose predictions are
    averaged, as in the paper.  NUTS and ADVI sample the same model in the
    unconstrained (simplex-transformed) space.

    The log-likelihood of each rating, and its gradient, take one fused Numba
    pass over its K x L terms for the observed level only (:class:`~bayesrec.models._mmsbm_kernels.LevelLogp`):
    nothing of size ratings x K x L is stored.  The level probabilities ``prob``
    (prediction only) are contracted one group axis at a time (ratings x L x
    levels), never forming ratings x K x L x levels.  Group labels
    are exchangeable (any permutation of the K user groups, or of the L item
    groups, gives the same likelihood): compare fits by predictions and
    log-likelihood, not by raw ``theta``/``eta``.

    Parameters
    ----------
    ratings : Ratings
        Training ratings on a discrete scale.  Users and items without ratings
        keep their prior (the MAP is then the prior mean, uniform memberships).
    n_user_groups, n_item_groups : int
        K and L.
    priors : dict, optional
        Override concentrations by name: ``theta_concentration`` (:math:`a_\theta`),
        ``eta_concentration`` (:math:`a_\eta`), ``p_concentration`` (:math:`a_p`).
        Defaults: :func:`mmsbm_default_priors`.  MAP needs them >= 1.

    Returns
    -------
    pm.Model
        Variables ``theta (user, user_group)``, ``eta (item, item_group)``,
        ``p (user_group, item_group, rating_level)``; deterministics
        ``prob (obs, rating_level)`` and ``mu (obs)`` (expected rating); observed
        ``rating (obs)`` holding level codes; data ``user_idx``, ``item_idx``.
        The model's spec declares an EM step (:data:`MMSBM_EM_STEP`), so
        ``fit(model, "map")`` uses EM, with 10 restarts (the spec's ``fit_defaults``).
    """
    if ratings.scale.levels is None:
        raise InputError(
            f"mmsbm models ratings as categories and needs a discrete rating scale, got "
            f"{ratings.scale}; declare the levels, e.g. scale=[1, 2, 3, 4, 5]"
        )
    n_user_groups = check_positive_int(n_user_groups, "n_user_groups")
    n_item_groups = check_positive_int(n_item_groups, "n_item_groups")
    conc = merge_priors(mmsbm_default_priors(), priors, "mmsbm")
    levels = np.asarray(ratings.scale.levels, dtype=float)
    coords = rating_coords(ratings, user_group=np.arange(n_user_groups),
                           item_group=np.arange(n_item_groups))

    with pm.Model(coords=coords) as model:
        user_idx, item_idx = pair_data(ratings)
        theta = pm.Dirichlet("theta", np.full(n_user_groups, conc["theta_concentration"]),
                             dims=("user", "user_group"))
        eta = pm.Dirichlet("eta", np.full(n_item_groups, conc["eta_concentration"]),
                           dims=("item", "item_group"))
        p = pm.Dirichlet("p", np.full(len(levels), conc["p_concentration"]),
                         dims=("user_group", "item_group", "rating_level"))
        theta_u, eta_i = theta[user_idx], eta[item_idx]
        prob = pm.Deterministic("prob", level_probabilities(theta_u, eta_i, p),
                                dims=("obs", "rating_level"))
        pm.Deterministic("mu", prob @ levels, dims="obs")
        pm.CustomDist("rating", theta_u, eta_i, p, dist=_rating_dist, logp=_rating_logp,
                      signature="(k),(l),(k,l,r)->()", dtype="int64",
                      observed=ratings.level_codes, dims="obs")
    return model
