r"""Block-Gibbs sampling of factor models inside PyMC: ``fit(model, method="gibbs")``.

For any model whose spec declares a :class:`~bayesrec.models.hooks.FactorStructure`
(PMF and BPMF, identity link), with Gaussian ratings or the ordered probit
(``likelihood="ordered_probit"``: latent ratings by data augmentation, cutpoints by
Metropolis-Hastings, :mod:`~bayesrec.inference.gibbs.ordinal`); the ordered logit is
refused.  Side features (``user_features`` / ``item_features``) are sampled with
Gaussian ratings (:mod:`~bayesrec.inference.gibbs.features`), and so is implicit
feedback (``implicit``, :mod:`~bayesrec.inference.gibbs.implicit`) and the day of each
rating as context (``context="day"``, :mod:`~bayesrec.inference.gibbs.context`); these
with an ordinal likelihood are refused.

NUTS has to move tens of thousands of factor coordinates jointly.  Given the
hyperparameters and the noise, each user's factors and bias have an exact Gaussian
conditional, and so do each item's, which is how BPMF is sampled in the paper
(Salakhutdinov & Mnih, 2008).  :func:`gibbs_steps` builds a PyMC compound step
whose parts are each a valid PyMC step method (:class:`pymc.step_methods.compound.
BlockedStep`), run by :func:`pymc.sample` (PyMC's own sampler), so the fit is the
same DataTree as NUTS's once :func:`bayesrec.inference.fit` has finished it.  One
sweep:

1. :class:`~.steps.FactorGibbs`: all user rows ``(U_u, b_u)`` from their joint
   Gaussian conditional (batched: precisions assembled from the ratings grouped by
   user, one Cholesky per row, in one compiled pass), then all item rows
   ``(V_i, c_i)``, then the offset (Gaussian) and the noise sd (exact independence
   Metropolis-Hastings).  Non-centred BPMF: the same for the standardised factors.
2. :class:`~.steps.HyperGibbs` (BPMF): the factor means (Gaussian), the LKJ
   Cholesky covariances (inverse-Wishart proposal corrected by the LKJ prior ratio:
   exact MH) and the bias scale ``tau`` (exact MH).  Or, with ``hyper="nuts"``,
   PyMC's NUTS on the log-density of these variables' Markov blanket only
   (:func:`~.nuts.markov_blanket_nuts`): exact too, slower (a compiled PyTensor
   graph, and with the non-centred BPMF the blanket is the whole likelihood).
   With side features (``user_features`` / ``item_features``), the rows' prior means
   are per row (``mu + x_r B``, ``x_r beta``: the row kernel takes one ``P_0 mu_0`` per
   row), :class:`~.features.FeatureGibbs` then draws the coefficients and their scales
   exactly given the factors and biases (before the hyperparameters), and
   :class:`HyperGibbs` works on the residuals ``U - X B`` and ``b - X beta``.
   With implicit feedback the rows drawn are the effective ``U_u + s_u`` (the prior mean
   shifted by the implicit sum), and :class:`~.implicit.ImplicitGibbs` then scans the
   implicit factors ``y_j`` one item at a time, each from its Gaussian conditional
   (right after :class:`FactorGibbs`).
   With a day context (``context="day"``) each rating's other-side row is ``Z_i + D_d``
   in the users' and items' conditionals, and :class:`~.context.DayGibbs` then draws
   every day's ``(D_d, e_d)`` from its Gaussian conditional and translates the offset
   against the biases of the rated days, the users and the items (exact moves along
   directions the likelihood does not see).
3. :class:`~.moves.ScaleMoves` and :class:`~.moves.RidgeMoves`: exact
   generalised-Gibbs moves along directions the conditional updates cross slowly
   (the user/item balance of each factor, the spread of each side's factors and of
   the biases, the split of user and item effects between biases and factor means).
   They assume priors with a mean shared by every row, so models with features run
   without them (and without the rescaling of the factor rows): slower mixing along
   those directions, the same posterior.  So do models with a day context (rescaling
   ``U`` and ``V`` would change ``(U + V) . D``).  With implicit terms they act on the effective
   factors ``U + s`` the likelihood reads, and the balance moves scale the implicit
   factors with their side.

The factor rows are over-relaxed by default (``overrelax=-0.8``, Adler 1981): each
row's new value is its conditional mean plus ``-0.8`` times its current deviation
from it plus fresh noise scaled to keep the same conditional, which suppresses the
random walk of the alternating user/item updates (on MovieLens 100K it roughly
doubles to quadruples the effective sample size of predictions at no cost per sweep).

Every update leaves the posterior invariant, so the chain is a valid MCMC for the
model as written (LKJ hyperprior, learned noise, biases), not for a variant.  The
only departure from exact updates is during burn-in (``tune``, discarded): the bias
scale is held small for the first ``hold_bias_sd`` sweeps (see
:meth:`~.steps.FactorGibbs._burn_in_hold`).  A non-centred BPMF is sampled through
its centred twin (:func:`run`), whose conjugate updates mix better.

``sample_stats`` holds ``training_log_likelihood`` (the training log-likelihood of each
draw, summed over ratings, from :class:`~.steps.FactorGibbs`; not named
``log_likelihood``, which ArviZ would take for a pointwise one: use
:func:`bayesrec.inference.add_log_likelihood` for LOO) and the acceptance flags of the MH parts;
with an ordered probit ``cutpoint_acceptance``;
with ``hyper="nuts"`` also NUTS's statistics, whose ``lp`` is the blanket's
log-density, not the model's.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Literal

import numpy as np
import pymc as pm
import xarray as xr
from pydantic import Field
from threadpoolctl import threadpool_limits

from bayesrec.errors import InputError
from bayesrec.inference.gibbs.context import DayGibbs
from bayesrec.inference.gibbs.features import FeatureGibbs
from bayesrec.inference.gibbs.implicit import ImplicitGibbs
from bayesrec.inference.gibbs.layout import (
    GIBBS_LIKELIHOODS,
    FactorLayout,
    factor_structure_of,
    layout_of,
)
from bayesrec.inference.gibbs.moves import RidgeMoves, ScaleMoves
from bayesrec.inference.gibbs.nuts import blanket_terms, markov_blanket_nuts
from bayesrec.inference.gibbs.ordinal import OrdinalProbit
from bayesrec.inference.gibbs.steps import FactorGibbs, HyperGibbs
from bayesrec.inference.nuts import sampled_groups
from bayesrec.inference.options import (
    Expect,
    Fraction,
    MethodOptions,
    NonNegativeInt,
    PositiveInt,
    check,
)
from bayesrec.inference.start import initial_values, stored_var_names
from bayesrec.models.registry import build_model, model_info

__all__ = [
    "HYPER_STEPS",
    "DayGibbs",
    "FactorGibbs",
    "FactorLayout",
    "FeatureGibbs",
    "HyperGibbs",
    "ImplicitGibbs",
    "Options",
    "OrdinalProbit",
    "RidgeMoves",
    "ScaleMoves",
    "blanket_terms",
    "gibbs_steps",
    "layout_of",
    "markov_blanket_nuts",
    "run",
]

HYPER_STEPS = ("exact", "nuts")


class Options(MethodOptions):
    """``draws`` (500), ``tune`` (100 burn-in sweeps, discarded), ``chains`` (2), ``cores``
    (1: chains one after the other), ``hyper`` ("exact": conjugate / independence-MH
    updates of the BPMF hyperparameters; "nuts": NUTS on their Markov blanket),
    ``target_accept`` (of that NUTS), ``init`` ("auto": the model's initial point;
    "prior": one prior draw), ``moves`` (extra exact moves along slow directions),
    ``hold_bias_sd`` (40 burn-in sweeps with the bias scale held small), ``overrelax``
    (-0.8: over-relaxed factor rows; 0: plain Gibbs)."""

    draws: PositiveInt = 500
    tune: NonNegativeInt = 100
    chains: PositiveInt = 2
    cores: PositiveInt | None = 1
    hyper: Literal["exact", "nuts"] = "exact"
    moves: bool = True
    hold_bias_sd: NonNegativeInt = 40
    overrelax: Annotated[float, Field(gt=-1, lt=1), Expect("a number in (-1, 1)")] = -0.8
    target_accept: Fraction = 0.8
    init: Literal["auto", "prior"] = "auto"


_DEFAULTS = Options()


def gibbs_steps(model: pm.Model, *, hyper: str = _DEFAULTS.hyper,
                moves: bool = _DEFAULTS.moves,
                hold_bias_sd: int = _DEFAULTS.hold_bias_sd,
                overrelax: float = _DEFAULTS.overrelax,
                target_accept: float = _DEFAULTS.target_accept,
                initial_point: dict | None = None) -> list:
    """The compound step for ``pm.sample(step=...)``, in sweep order (NUTS, if any, first).

    Parameters
    ----------
    model : pm.Model
        A model from :func:`bayesrec.models.build_model` whose spec declares a factor
        structure (PMF, BPMF), identity link.
    hyper : {"exact", "nuts"}
        How BPMF's hyperparameters are updated (:class:`HyperGibbs`, or NUTS on
        their Markov blanket, with ``target_accept``).
    moves : bool
        Add :class:`ScaleMoves` and :class:`RidgeMoves` (faster mixing, same posterior).
    hold_bias_sd : int
        Burn-in sweeps that start with BPMF's bias scale held small.
    overrelax : float in (-1, 1)
        Over-relaxation of the factor rows (Adler 1981; :func:`~.kernels.draw_rows`):
        each row moves to ``mean + a (current - mean) + sqrt(1 - a^2) noise`` of its
        Gaussian conditional, which leaves the posterior invariant; ``0`` is plain
        Gibbs.  The default ``-0.8`` roughly doubles to quadruples the effective
        sample size of predictions on MovieLens 100K (``benchmarks/gibbs.py``).
    initial_point : dict, optional
        For the NUTS step's set-up (default: the model's initial point).
    """
    check(Options, "gibbs", {"hyper": hyper, "moves": moves, "hold_bias_sd": hold_bias_sd,
                             "overrelax": overrelax, "target_accept": target_accept})
    layout = layout_of(model)
    names = [layout.user.factors, layout.item.factors]
    if layout.biases:
        names += [layout.user.bias, layout.item.bias]
    if layout.has_offset:
        names.append("offset")
    if layout.noise is None:
        names.append("sigma")
    if layout.ordinal:
        names.append("cutpoints")
    gibbs_rvs = [model[n] for n in names]
    by_value = {value.name: rv for rv, value in model.rvs_to_values.items()}
    value_vars = [model.rvs_to_values[rv] for rv in gibbs_rvs]
    side_info = " and ".join(
        (["user_features/item_features"] if layout.features else [])
        + (["implicit"] if layout.implicit else [])
        + (["context='day'"] if layout.context else []))
    if side_info and layout.ordinal:
        raise InputError(f"the gibbs method does not support {side_info} with "
                         f"likelihood={layout.likelihood!r} yet; use map, nuts or advi")
    if side_info and not layout.centred:
        raise InputError(f"the gibbs method samples a non-centred model with {side_info} "
                         "through its centred twin: use fit(model, 'gibbs') "
                         "(bayesrec.inference.gibbs.run)")
    # the moves shift and rescale factors and biases as if their prior means were shared;
    # with feature means (x_r B, x_r beta) their Jacobians and prior terms differ, so a
    # model with features is sampled without them (slower mixing, the same posterior).
    # Implicit sums are part of the moves (the likelihood reads U + s; the balance moves
    # scale the implicit factors with their side)
    # A day context is not part of the moves either (scaling U and V would change the
    # days' interactions (U + V) . D): with one, they are off too
    moves = moves and not layout.features and layout.context is None
    rescale = moves and layout.hierarchical and layout.centred
    if rescale:  # FactorGibbs also rescales the Cholesky factors
        value_vars += [model.rvs_to_values[model[f"{s}_factor_chol"]] for s in ("user", "item")]
    specs = [(FactorGibbs, value_vars, {"hold_bias_sd": hold_bias_sd, "rescale": rescale,
                                        "overrelax": overrelax})]
    if layout.implicit:  # right after the rows, given them
        implicit_rvs = [model[imp.key] for imp in layout.implicit.values()]
        implicit_rvs += [by_value[imp.sd.key] for imp in layout.implicit.values()
                         if imp.sd.key is not None]
        gibbs_rvs += implicit_rvs
        specs.append((ImplicitGibbs, [model.rvs_to_values[rv] for rv in implicit_rvs],
                      {"overrelax": overrelax}))
    if layout.context is not None:  # the days, given the users' and items' rows
        day_rvs = [model["day_factors"]] + ([model["day_bias"]] if layout.biases else [])
        day_rvs += [by_value[sc.key] for sc in (layout.context.factor_sd, layout.context.bias_sd)
                    if sc is not None and sc.key is not None]
        gibbs_rvs += day_rvs
        specs.append((DayGibbs, [model.rvs_to_values[rv] for rv in day_rvs],
                      {"overrelax": overrelax}))
    if layout.ordinal:  # first: draws the latent ratings the other steps read
        ordinal_names = ["cutpoints"] + ([layout.user.bias, layout.item.bias]
                                         if layout.biases else [])
        specs.insert(0, (OrdinalProbit, [model.rvs_to_values[model[n]] for n in ordinal_names],
                         {}))
    feature_rvs = [model[f"{side}_{part}feature_{what}"] for side in layout.features
                   for part in (("", "bias_") if layout.biases else ("",))
                   for what in ("sd", "coef_std")]
    if feature_rvs:  # given the factors and biases, before the hyperparameters
        specs.append((FeatureGibbs, [model.rvs_to_values[rv] for rv in feature_rvs], {}))
    rest = [rv for rv in model.free_RVs if rv not in gibbs_rvs + feature_rvs]
    nuts = None
    if rest and hyper == "nuts":
        nuts = markov_blanket_nuts(model, rest, initial_point=initial_point,
                                   target_accept=target_accept)
    elif rest:
        if not layout.centred:  # the update rewrites z to keep U fixed
            rest += [model[layout.user.factors], model[layout.item.factors]]
        specs.append((HyperGibbs, [model.rvs_to_values[rv] for rv in rest], {}))
    if moves:
        moved = _moved_vars(model, layout)
        specs.append((ScaleMoves, moved, {}))
        if layout.biases:
            specs.append((RidgeMoves, moved, {}))
    # the last step reports the log-likelihood of the point that is recorded
    steps = [cls(vars_, layout, model=model, report_log_likelihood=(j == len(specs) - 1),
                 **kwargs) for j, (cls, vars_, kwargs) in enumerate(specs)]
    if nuts is not None:  # first, so that one of ours ends the sweep
        steps.insert(0, nuts)
    return steps


def _moved_vars(model: pm.Model, layout: FactorLayout) -> list:
    """The value variables :class:`ScaleMoves` and :class:`RidgeMoves` change."""
    names = []
    if layout.biases:
        names += [layout.user.bias, layout.item.bias]
    if layout.has_offset:
        names.append("offset")
    if layout.centred:
        names += [layout.user.factors, layout.item.factors]
    if layout.hierarchical:
        names += ["user_factor_mean", "item_factor_mean", "user_factor_chol", "item_factor_chol"]
    if layout.learned_bias_sd and layout.biases:
        names += ["bias_sd"]
    return [model.rvs_to_values[model[n]] for n in names]


def run(model: pm.Model, opts: dict, random_seed: int, progressbar: bool) -> dict:
    """The ``posterior`` and ``sample_stats`` of the block-Gibbs sampler.

    ``init="prior"`` starts the chains from one prior draw (as NUTS's
    ``init="prior"``); ``"auto"``: the model's initial point (factors at their prior mean).

    A non-centred model whose factor structure names its centred twin
    (``centred_options``: BPMF) is sampled through that twin, whose conjugate updates
    mix better, and the draws are mapped back to the model's own variables
    (``z = L^{-1} (U - mu)``): the same posterior, as a reparameterisation.
    """
    info = model_info(model)
    structure = factor_structure_of(info.name if info else "custom",
                                    info.config if info else {}, "the gibbs method",
                                    GIBBS_LIKELIHOODS)
    if structure.centred or structure.centred_options is None:
        return _sample(model, opts, random_seed, progressbar)
    twin = build_model(info.name, info.ratings,
                       **{**info.config, **structure.centred_options})
    groups = _sample(twin, opts, random_seed, progressbar)
    groups["posterior"] = _non_centred(groups["posterior"], model)
    return groups


def _sample(model: pm.Model, opts: dict, random_seed: int, progressbar: bool) -> dict:
    initvals = initial_values(model, "prior", random_seed) if opts["init"] == "prior" else None
    steps = gibbs_steps(model, hyper=opts["hyper"], moves=opts["moves"],
                        hold_bias_sd=opts["hold_bias_sd"], overrelax=opts["overrelax"],
                        target_accept=opts["target_accept"])
    with _one_blas_thread_per_chain(opts["chains"], opts["cores"] or 1):
        dt = pm.sample(
            draws=opts["draws"], tune=opts["tune"], chains=opts["chains"],
            cores=opts["cores"] or 1, step=steps, random_seed=random_seed,
            progressbar=progressbar, nuts_sampler="pymc", var_names=stored_var_names(model),
            model=model, initvals=initvals, compute_convergence_checks=False,
            quiet=not progressbar,
        )
    return sampled_groups(dt)


def _one_blas_thread_per_chain(chains: int, cores: int):
    """BLAS limited to one thread while chains run in parallel processes.

    PyMC limits each chain process's BLAS threads (``blas_cores``) except with Linux's
    ``fork`` start method, its default there, where every chain then runs a full-width
    OpenBLAS pool and the pools fight over the cores.  Set in the parent, the limit is
    what the forked chains inherit.  On MovieLens u1 (BPMF with user and item attributes,
    2 x (50 + 200) sweeps on 2 busy cores) the fit took 175 s without it and 21 s with
    it, the same draws to the last digit.
    """
    if chains > 1 and cores > 1:
        return threadpool_limits(limits=1, user_api="blas")
    return contextlib.nullcontext()


def _non_centred(posterior: xr.Dataset, model: pm.Model) -> xr.Dataset:
    """Draws of the centred twin as draws of the non-centred ``model``: the standardised
    factors ``z = L^{-1} (U - mu)`` of each side added (``z = L^{-1} (U - mu - X B)``
    with side features), and the standardised implicit factors ``y / s_y``, in the model's
    variable order."""
    out = posterior.copy()
    for side in ("user", "item"):
        factors = posterior[f"{side}_factors"].transpose("chain", "draw", side, "factor").values
        mean = posterior[f"{side}_factor_mean"].transpose("chain", "draw", "factor").values
        packed = posterior[f"{side}_factor_chol"].values
        if f"{side}_features" in model.named_vars:  # U - mu - X B: rows N(0, L L^T)
            x = np.asarray(model[f"{side}_features"].get_value(), dtype=float)
            coef = posterior[f"{side}_feature_coef"].transpose(
                "chain", "draw", f"{side}_feature", "factor").values
            factors = factors - np.einsum("rp,cdpk->cdrk", x, coef)
        k = factors.shape[-1]
        rows, cols = np.tril_indices(k)
        chol = np.zeros((*packed.shape[:2], k, k))
        chol[..., rows, cols] = packed
        z = np.empty_like(factors)  # (chain, draw, unit, factor), a block of draws at a time
        step = max(1, 2**21 // max(1, factors[0, 0].size))  # no temporary as big as z
        for c in range(z.shape[0]):
            for start in range(0, z.shape[1], step):
                block = slice(start, start + step)
                dev = factors[c, block] - mean[c, block, None, :]
                z[c, block] = np.linalg.solve(chol[c, block, None], dev[..., None])[..., 0]
        out[f"{side}_factors_std"] = (("chain", "draw", side, "factor"), z)
    for side in ("user", "item"):  # learned implicit scales: y = s_y * y_std
        if f"{side}_implicit_std" in model.named_vars:
            out[f"{side}_implicit_std"] = (posterior[f"{side}_implicit"]
                                           / posterior[f"{side}_implicit_sd"])
    names = [n for n in stored_var_names(model) if n in out]
    missing = sorted(set(stored_var_names(model)) - set(names))
    if missing:
        raise InputError(f"the centred twin's draws lack {missing}: the factory changed")
    return out[names]
