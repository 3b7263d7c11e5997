"""Evaluate model quantities for many posterior draws at once (no Python loop per draw).

The model's graph of a quantity (``mu``, ``prob``, the training log-likelihood)
is written in terms of its free random variables.  :class:`DrawEvaluator`
replaces each free variable by a tensor with one extra leading *sample*
dimension and vectorises the graph with
:func:`pytensor.graph.replace.vectorize_graph`, so one compiled function maps a
block of ``S`` draws to ``S`` values of every quantity.  The function is
compiled once per model and quantity (cached) and called once per block of
draws; blocks are sized so that no array larger than ``max_elements`` numbers
is needed.

Pairs other than the training pairs are evaluated by swapping the model's
``user_idx``/``item_idx`` data containers (as :func:`bayesrec.inference.predict`
does); the compiled function reads them at call time.  The training
log-likelihood needs the training pairs (its observed values are those of the
fit), so it is always evaluated without a swap.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Sequence

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
import xarray as xr
from pytensor.graph.replace import graph_replace, vectorize_graph
from pytensor.graph.traversal import ancestors
from pytensor.tensor.random.basic import NormalRV
from pytensor.tensor.random.op import RandomVariable

from bayesrec.errors import InputError
from bayesrec.inference.numerics import reproducible
from bayesrec.inference.record import (
    _UNIT_DIMS,
    FitRecord,
    day_codes_of,
    posterior_of,
    swapped_pairs,
    training_days,
)

__all__ = [
    "DrawEvaluator",
    "draw_evaluator",
    "iter_draw_blocks",
    "evaluate_draws",
    "log_likelihood_draws",
    "rating_variable",
    "MAX_ELEMENTS",
]

#: Default memory budget: the largest number of array elements a block of draws may need.
MAX_ELEMENTS = 2**25  # 33.5 M float64 values, 268 MB
#: the most numbers of the posterior copied at once when a block picks thinned draws
COPY_ELEMENTS = 2**21  # 16 MB

#: Name of the per-draw training log-likelihood (summed over observations).
LOG_LIKELIHOOD = "log_likelihood"
#: Name of the level probabilities of a continuous likelihood (``level_edges=``).
LEVEL_PROBABILITIES = "prob"

_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class DrawEvaluator:
    """A compiled function from a block of draws of the free variables to model quantities.

    Parameters
    ----------
    model : pm.Model
    var_names : sequence of str
        Named variables of the model to evaluate (deterministics such as ``mu`` or
        ``prob``).
    log_likelihood : bool
        Also evaluate ``log_likelihood``: the log-density of every observed variable at
        its observed value, summed over observations (one number per draw).
    level_edges : sequence of float, optional
        Also evaluate ``prob`` (obs, level): the mass of the observed rating's
        distribution on each level's interval between these edges (the first and last
        intervals open), from its CDF (:func:`pymc.logcdf`): the level probabilities of
        a model with a continuous likelihood.

    Attributes
    ----------
    inputs : list of str
        The free variables the quantities depend on (the posterior must hold them).
    outputs : list of str
        ``var_names`` plus ``"log_likelihood"`` when asked for.
    """

    def __init__(self, model: pm.Model, var_names: Sequence[str] = ("mu",), *,
                 log_likelihood: bool = False, level_edges: Sequence[float] | None = None):
        missing = [v for v in var_names if v not in model.named_vars]
        if missing:
            raise InputError(f"the model has no variable(s) {missing}; it has "
                             f"{sorted(model.named_vars)}")
        outs = [model[v] for v in var_names]
        self.outputs = list(var_names)
        if log_likelihood:
            if not model.observed_RVs:
                raise InputError("the model has no observed variable: no log-likelihood")
            terms = [pm.logp(rv, model.rvs_to_values[rv], warn_rvs=False).sum()
                     for rv in model.observed_RVs]
            outs.append(pt.add(*terms) if len(terms) > 1 else terms[0])
            self.outputs.append(LOG_LIKELIHOOD)
        if level_edges is not None:
            outs.append(_level_probabilities(model, np.asarray(level_edges, dtype=float)))
            self.outputs.append(LEVEL_PROBABILITIES)
        if not outs:
            raise InputError("nothing to evaluate: give var_names or log_likelihood=True")
        # observed variables that other quantities depend on (pm.observe on a parameter)
        # take their observed values
        observed = {rv: model.rvs_to_values[rv] for rv in model.observed_RVs}
        outs = graph_replace(outs, observed, strict=False)
        needed = set(ancestors(outs))
        free = [rv for rv in model.free_RVs if rv in needed]
        batched = {rv: pt.tensor(dtype=rv.dtype, shape=(None, *rv.type.shape), name=rv.name)
                   for rv in free}
        vec = vectorize_graph(outs, replace=batched)
        vec = vec if isinstance(vec, list) else [vec]
        left = {v.name for v in ancestors(vec)
                if v.owner is not None and isinstance(v.owner.op, RandomVariable)}
        if left:
            raise InputError(
                f"cannot vectorise {self.outputs}: random variables {sorted(map(str, left))} "
                "remain in the graph after replacing the free variables"
            )
        self.inputs = [rv.name for rv in free]
        self._dtypes = [rv.dtype for rv in free]
        with reproducible():
            self._fn = pytensor.function(list(batched.values()), vec, on_unused_input="ignore")

    def __call__(self, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Evaluate for ``S`` draws: ``values[name]`` has shape ``(S, *shape of name)``."""
        args = [np.asarray(values[name], dtype=dtype)
                for name, dtype in zip(self.inputs, self._dtypes, strict=True)]
        out = self._fn(*args)
        return dict(zip(self.outputs, out, strict=True))


def draw_evaluator(model: pm.Model, var_names: Sequence[str] = ("mu",), *,
                   log_likelihood: bool = False,
                   level_edges: Sequence[float] | None = None) -> DrawEvaluator:
    """A (cached) :class:`DrawEvaluator` of ``var_names`` for ``model``."""
    edges = None if level_edges is None else tuple(float(e) for e in level_edges)
    key = (tuple(var_names), bool(log_likelihood), edges)
    per_model = _CACHE.setdefault(model, {})
    if key not in per_model:
        per_model[key] = DrawEvaluator(model, var_names, log_likelihood=log_likelihood,
                                       level_edges=edges)
    return per_model[key]


def rating_variable(model: pm.Model):
    """The model's observed rating variable (named ``rating`` by the data convention, or
    its only observed variable)."""
    if "rating" in model.named_vars and model["rating"] in model.observed_RVs:
        return model["rating"]
    if len(model.observed_RVs) == 1:
        return model.observed_RVs[0]
    raise InputError("the model has no observed variable named 'rating' and not exactly one "
                     f"observed variable ({[rv.name for rv in model.observed_RVs]})")


def _interval_masses(cdf, sf, z):
    """Masses of the intervals between edges (axis 0) from the CDF and the survival function
    at the edges, each interval from the side where it is accurate: ``cdf(b) - cdf(a)``
    below the centre (``z < 0`` at the upper edge), ``sf(a) - sf(b)`` above it, so a level
    far in the upper tail keeps its tiny mass instead of ``1 - 1 = 0``."""
    zeros, ones = pt.zeros_like(cdf[:1]), pt.ones_like(cdf[:1])
    cdf = pt.concatenate([zeros, cdf, ones], axis=0)
    sf = pt.concatenate([ones, sf, zeros], axis=0)
    upper_z = pt.concatenate([z, ones], axis=0)  # z at each interval's upper edge
    low = cdf[1:] - cdf[:-1]
    high = sf[:-1] - sf[1:]
    return pt.clip(pt.switch(upper_z <= 0, low, high), 0.0, 1.0)


def _level_probabilities(model: pm.Model, edges: np.ndarray):
    """``(obs, level)``: the observed rating distribution's mass between ``edges``."""
    rv = rating_variable(model)
    # one CDF per edge, each at the shape of the pairs asked for (``mu`` follows the swapped
    # pair indices, while the rating's own size is that of the training data)
    like = model["mu"] if "mu" in model.named_vars else rv
    if isinstance(rv.owner.op, NormalRV):  # the common case, by erfc: 3x faster than logcdf
        loc, scale = rv.owner.inputs[-2:]
        loc = loc + pt.zeros_like(like, dtype="float64")
        z = pt.stack([(edge - loc) / (scale * np.sqrt(2.0)) for edge in edges], axis=0)
        return _interval_masses(0.5 * pt.erfc(-z), 0.5 * pt.erfc(z), z).T
    else:
        try:
            cdf = pt.stack([pt.exp(pm.logcdf(rv, pt.full_like(like, edge, dtype="float64"),
                                              warn_rvs=False)) for edge in edges], axis=0)
        except NotImplementedError as err:
            raise InputError(
                f"the distribution of {rv.name!r} has no CDF, so its level probabilities "
                "cannot be computed: give it a logcdf (pm.CustomDist(..., logcdf=...)) or "
                "a deterministic 'prob' (obs, rating_level)") from err
    cdf = pt.concatenate([pt.zeros_like(cdf[:1]), cdf, pt.ones_like(cdf[:1])], axis=0)
    return pt.clip(cdf[1:] - cdf[:-1], 0.0, 1.0).T


def row_width(posterior, names) -> int:
    """Numbers per pair and draw: the widest row a pair gathers from the variables
    ``names`` of ``posterior``, each one's size over the ``user`` or ``item`` dim it is
    indexed by (a user's factors; MPMA's local item factors, dims ``(user_cluster,
    item, factor)``: clusters x factors).  Counting every dim after the first instead
    took all items x factors (16,820 on MovieLens) as one pair's row: blocks of one pair
    in the training check, 80,000 graph evaluations for MPMA's ADVI fit on u1 (an hour).

    A variable with neither dim (a feature model's coefficients, dims ``(user_feature,
    factor)``; a packed Cholesky factor; cutpoints) is read once per draw, not once per
    pair, and does not count: counted, BPMF with user features checked its training fit
    43 pairs at a time (1,861 data swaps, 94 s of a 105 s Gibbs fit on u1).
    """
    return max([1, *(int(np.prod([n for d, n in posterior[name].sizes.items()
                                  if d not in ("chain", "draw", *_UNIT_DIMS)]))
                     for name in names
                     if any(d in _UNIT_DIMS for d in posterior[name].dims))])


def iter_draw_blocks(posterior, evaluator: DrawEvaluator, *, n_pairs: int,
                     max_elements: int = MAX_ELEMENTS, positions: np.ndarray | None = None
                     ) -> Iterator[tuple[slice, dict[str, np.ndarray]]]:
    """Evaluate ``evaluator`` over the posterior in blocks of draws, in draw order.

    Each block holds every chain and a run of draws ``draw_slice`` (positions),
    sized so that ``chains * draws * n_pairs * width`` stays under
    ``max_elements``.  Yields ``(draw_slice, {output: array (chain, draw, ...)})``.
    The caller sets the pairs (with the model's data containers) beforehand.
    ``positions`` (optional) are the draws to use in every chain, in order: the
    posterior ``isel(draw=positions)`` would give, read a block at a time instead of
    copied whole (``draw_slice`` then counts positions).
    """
    post = posterior_of(posterior)
    missing = [n for n in evaluator.inputs if n not in post]
    if missing:
        raise InputError(f"the posterior lacks the free variable(s) {missing} of the model")
    n_chain = post.sizes["chain"]
    n_draw = post.sizes["draw"] if positions is None else len(positions)
    arrays = {n: post[n].transpose("chain", "draw", ...).values for n in evaluator.inputs}
    per_draw = n_chain * max(1, n_pairs) * row_width(post, evaluator.inputs)
    step = int(max(1, min(n_draw, max_elements // per_draw)))
    if positions is not None:  # picked draws are copied: a block's copy stays small too
        per_draw_in = sum(int(np.prod(a.shape[2:])) for a in arrays.values())
        step = int(max(1, min(step, COPY_ELEMENTS // max(1, per_draw_in))))
    for start in range(0, n_draw, step):
        block = slice(start, min(start + step, n_draw))
        picked = block if positions is None else positions[block]
        # one chain at a time: a run of draws of one chain is a view of the posterior,
        # where all chains at once would copy every input (the whole posterior of a
        # sampled fit when one block holds every draw)
        result = {}
        for c in range(n_chain):
            for k, v in evaluator({n: a[c, picked] for n, a in arrays.items()}).items():
                result.setdefault(k, np.empty((n_chain, *v.shape), dtype=v.dtype))[c] = v
        yield block, result


def evaluate_draws(fit: xr.DataTree, users=None, items=None, *, var_names=("mu",),
                   model: pm.Model | None = None, posterior: xr.Dataset | None = None,
                   max_elements: int = MAX_ELEMENTS, timestamps=None) -> xr.Dataset:
    """Model quantities (default ``mu``) for every posterior draw and the given pairs.

    Parameters
    ----------
    fit : DataTree
        A fit from :func:`bayesrec.inference.fit`.
    users, items : sequences of raw ids, optional
        The pairs; the training pairs when both are omitted.
    var_names : sequence of str
        Variables with a leading ``obs`` dim (``mu``, ``prob``, ...).
    model : pm.Model, optional
        Rebuilt from the fit when omitted.
    posterior : Dataset, optional
        Draws to use instead of the fit's posterior (e.g. a thinned one).
    max_elements : int
        Memory budget per block of draws (see :func:`iter_draw_blocks`).
    timestamps : array-like, optional
        For a model with a day context, the time of each pair (see
        :func:`~bayesrec.inference.predict`); the training pairs are on their own days.

    Returns
    -------
    xarray.Dataset
        One variable per name, dims ``(chain, draw, pair, ...)``, with ``user`` and
        ``item`` id coordinates along ``pair``.
    """
    record = FitRecord(fit)
    model = record.model(model)
    train = record.ratings
    if users is None and items is None:
        ucodes, icodes, dcodes = train.user, train.item, training_days(model)
    else:
        ucodes, icodes = train.user_codes_of(users), train.item_codes_of(items)
        dcodes = day_codes_of(model, timestamps, len(ucodes))
        if len(ucodes) != len(icodes):
            raise InputError(f"mismatched lengths: {len(ucodes)} users and {len(icodes)} items")
    post = posterior_of(fit) if posterior is None else posterior
    evaluator = draw_evaluator(model, tuple(var_names))
    parts: dict[str, list] = {v: [] for v in var_names}
    with swapped_pairs(model, ucodes, icodes, dcodes):
        for _, out in iter_draw_blocks(post, evaluator, n_pairs=len(ucodes),
                                       max_elements=max_elements):
            for v in var_names:
                parts[v].append(out[v])
    data = {}
    for v in var_names:
        arr = np.concatenate(parts[v], axis=1)
        dims = tuple(model.named_vars_to_dims.get(v) or ())
        if len(dims) != arr.ndim - 2 or dims[:1] != ("obs",):
            dims = ("obs", *(f"{v}_dim_{k}" for k in range(arr.ndim - 3)))
        data[v] = (("chain", "draw", "pair", *dims[1:]), arr)
    coords = {"chain": post["chain"].values, "draw": post["draw"].values,
              "user": ("pair", train.users.to_numpy()[ucodes]),
              "item": ("pair", train.items.to_numpy()[icodes])}
    return xr.Dataset(data, coords=coords)


def log_likelihood_draws(fit: xr.DataTree, *, model: pm.Model | None = None,
                         posterior: xr.Dataset | None = None,
                         max_elements: int = MAX_ELEMENTS) -> xr.DataArray:
    """Training log-likelihood of every draw, summed over observations: ``(chain, draw)``."""
    model = FitRecord(fit).model(model)
    post = posterior_of(fit) if posterior is None else posterior
    evaluator = draw_evaluator(model, (), log_likelihood=True)
    n_obs = fit["constant_data"].to_dataset()["user_idx"].size
    blocks = [out[LOG_LIKELIHOOD] for _, out in
              iter_draw_blocks(post, evaluator, n_pairs=n_obs, max_elements=max_elements)]
    return xr.DataArray(np.concatenate(blocks, axis=1), dims=("chain", "draw"),
                        coords={"chain": post["chain"].values, "draw": post["draw"].values},
                        name=LOG_LIKELIHOOD)
