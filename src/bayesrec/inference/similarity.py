r"""Similar items and similar users, with their uncertainty, from any fit.

The similarity of items :math:`i` and :math:`j` in posterior draw :math:`s` is the
Pearson correlation, across the fit's users, of their expected ratings in that draw:

.. math::

    \mathrm{sim}_s(i, j) = \operatorname{corr}_u\big(\mu_s(u, i),\ \mu_s(u, j)\big)

(and for users, the correlation across the fit's items).  It is built on ``mu``, the
expected rating, which the data pin down: unlike the cosine of two factor vectors it
does not change under a rotation of the latent space (PMF, BPMF, MPMA) or a
relabelling of groups (MMSBM), and an item's own bias (a shift shared by every user)
drops out.  The draws of the similarity are summarised by their mean, an
equal-tailed interval (by default the 5 % and 95 % quantiles) and the probability
that each neighbour is among the ``n`` most similar; items with few ratings get wide
intervals because their ``mu`` is uncertain.  A point fit (MAP: one draw per chain)
gives one point: its chains (MAP restarts) are averaged as predictions average them,
the similarity is that of the averaged expected ratings, and the interval and the
top-``n`` probability are NaN (``attrs["note"]`` says so).

**How.**  Generic: ``mu`` is evaluated for every user and the item with a chunk of
candidates, for a block of draws at once, by the model's own graph
(:func:`~bayesrec.inference.draws.draw_evaluator` with the data containers swapped,
as prediction does); this works for any model that follows the data-container
convention, also one :func:`~bayesrec.models.build_model` did not make (pass
``model=``).  It costs ``users x items`` evaluations of ``mu`` per draw.  Fast path:
a model whose spec declares a :class:`~bayesrec.models.hooks.FactorStructure` with
an identity link and a Gaussian likelihood (PMF, BPMF) has
:math:`\mu_{ui} = m + b_u + c_i + U_u^\top V_i`; centred across users this is
:math:`\tilde x_u^\top w_i` with :math:`x_u = (b_u, U_u)` and :math:`w_i = (1, V_i)`,
so every covariance is :math:`w_i^\top C w_j` with :math:`C` the
:math:`(D+1) \times (D+1)` scatter matrix of :math:`x` across users: per draw
:math:`O((n_\text{users} + n_\text{items}) D^2)` instead of
:math:`O(n_\text{users} n_\text{items} D)`.  Both give the same numbers (tested);
``fast=False`` forces the generic evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pymc as pm
import xarray as xr

from bayesrec.data.ids import id_array
from bayesrec.errors import InputError
from bayesrec.inference.draws import draw_evaluator, iter_draw_blocks
from bayesrec.inference.predict import _encode
from bayesrec.inference.record import FitRecord, swapped_pairs, thin_index
from bayesrec.models.hooks import FactorStructure
from bayesrec.models.registry import get_spec, model_info
from bayesrec.ranking import check_n

__all__ = ["POINT_NOTE", "similar_items", "similar_users"]

#: ``attrs["note"]`` of the result for a point fit.
POINT_NOTE = "MAP: a point, no uncertainty"
#: Pairs (users x items) whose ``mu`` the generic path evaluates at once, per draw.
PAIRS_PER_CHUNK = 2**19
#: Numbers in one array of a block of draws (draws x units x factors), fast path (8 MB).
FAST_BLOCK_ELEMENTS = 2**20


@dataclass(frozen=True)
class _Side:
    """Whose similarity (``unit``), correlated across what (``across``)."""

    unit: str
    across: str


_ITEMS = _Side("item", "user")
_USERS = _Side("user", "item")


# ---------------------------------------------------------------------------------------------
# public functions
# ---------------------------------------------------------------------------------------------
def similar_items(fit: xr.DataTree, item, n: int = 10, *, model: pm.Model | None = None,
                  max_draws: int | None = 1000, interval: float = 0.9,
                  fast: bool = True) -> xr.Dataset:
    """The ``n`` items most similar to ``item``, with the uncertainty of their similarity.

    The similarity of two items in one posterior draw is the correlation, across the
    fit's users, of their expected ratings ``mu`` in that draw (see the module
    docstring); candidates are all other items, ranked by the posterior mean.

    Parameters
    ----------
    fit : DataTree
        A fit from :func:`bayesrec.inference.fit` (any model, any method).
    item : id
        One item id of the fit (as the training ratings spell it).
    n : int
        Neighbours returned, and the ``n`` of ``prob_top_n`` (at most the number of
        other items).
    model : pm.Model, optional
        The fitted model; rebuilt from the fit when omitted (needed for fits of models
        that :func:`~bayesrec.models.build_model` did not make).
    max_draws : int or None
        Use at most this many posterior draws in all (evenly thinned, as prediction
        thins them); None uses every draw.
    interval : float
        Probability of the equal-tailed interval (default 0.9: the 5 % and 95 %
        quantiles of the similarity's draws).
    fast : bool
        Use the model's declared factor structure when it has one (PMF, BPMF with an
        identity link and Gaussian ratings): the same numbers, much faster.  False
        evaluates ``mu`` through the model's graph whatever the model.

    Returns
    -------
    xarray.Dataset
        Dim ``neighbour`` (labelled by item ids, most similar first): ``mean`` (the
        posterior mean similarity), ``lower``/``upper`` (the interval), ``prob_top_n``
        (the share of draws in which the neighbour is among the ``n`` most similar
        items), ``n_ratings`` (the neighbour's training ratings).  ``attrs``: ``item``,
        ``n``, ``n_draws``, ``method`` (what the similarity is), ``interval``,
        ``computed_by`` (``"factor structure"`` or ``"model graph"``), ``model``,
        ``fit_method``, ``point_fit`` and ``note`` (for a point fit,
        :data:`POINT_NOTE`: ``lower``, ``upper`` and ``prob_top_n`` are NaN).

    Raises
    ------
    UnknownIdError
        ``item`` is not an item of the fit.
    """
    return _similar(fit, item, n, _ITEMS, model=model, max_draws=max_draws,
                    interval=interval, fast=fast)


def similar_users(fit: xr.DataTree, user, n: int = 10, *, model: pm.Model | None = None,
                  max_draws: int | None = 1000, interval: float = 0.9,
                  fast: bool = True) -> xr.Dataset:
    """The ``n`` users most similar to ``user``: :func:`similar_items` with the roles of
    users and items exchanged (the correlation, across the fit's items, of two users'
    expected ratings in each draw).  ``neighbour`` is labelled by user ids and
    ``attrs["user"]`` names the user."""
    return _similar(fit, user, n, _USERS, model=model, max_draws=max_draws,
                    interval=interval, fast=fast)


# ---------------------------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------------------------
def _check_settings(max_draws, interval) -> None:
    if max_draws is not None and (isinstance(max_draws, bool)
                                  or not isinstance(max_draws, (int, np.integer))
                                  or max_draws < 1):
        raise InputError(f"max_draws must be a positive integer or None, got {max_draws!r}")
    if isinstance(interval, bool) or not isinstance(interval, (float, int)) \
            or not 0 < interval < 1:
        raise InputError(f"interval must be a probability between 0 and 1 (e.g. 0.9), "
                         f"got {interval!r}")


def _code_of(record: FitRecord, side: _Side, unit_id) -> int:
    """The code of one id; unknown ids raise :class:`UnknownIdError` (as prediction does)."""
    if np.ndim(unit_id) != 0:
        raise InputError(f"give one {side.unit} id, got {type(unit_id).__name__} of shape "
                         f"{np.shape(unit_id)}")
    ids, none = id_array([unit_id]), np.array([], dtype=object)
    users, items = (none, ids) if side.unit == "item" else (ids, none)
    ucodes, icodes, _, _ = _encode(record, users, items, unknown="error")
    return int((icodes if side.unit == "item" else ucodes)[0])


# ---------------------------------------------------------------------------------------------
# the similarity draws
# ---------------------------------------------------------------------------------------------
def _similar(fit, unit_id, n, side: _Side, *, model, max_draws, interval, fast) -> xr.Dataset:
    record = FitRecord(fit)
    _check_settings(max_draws, interval)
    train = record.ratings
    index = train.items if side.unit == "item" else train.users
    if len(index) < 2:
        raise InputError(f"the fit has {len(index)} {side.unit}(s): nothing to compare with")
    code = _code_of(record, side, unit_id)
    n = check_n(n, len(index) - 1)
    posterior = record.fit["posterior"].to_dataset()
    point = record.is_point
    positions = None if point else thin_index(posterior.sizes["chain"], posterior.sizes["draw"],
                                              max_draws)
    structure = _factor_structure(record, model) if fast else None
    if structure is not None and _has_factor_vars(posterior, structure):
        sims = _factor_similarity(posterior, positions, point, side, code, structure.biases)
        computed_by = "factor structure"
    else:
        n_across = train.n_users if side.across == "user" else train.n_items
        sims = _graph_similarity(record.model(model), posterior, positions, point, side, code,
                                 n_units=len(index), n_across=n_across)
        computed_by = "model graph"
    counts = train.item_counts() if side.unit == "item" else train.user_counts()
    attrs = {
        side.unit: _plain(unit_id), "n": n, "n_draws": int(sims.shape[0]),
        "method": f"correlation across {side.across}s of the expected ratings mu, "
                  "per posterior draw",
        "interval": f"equal-tailed {interval:.0%}: the {(1 - interval) / 2:.3g} and "
                    f"{(1 + interval) / 2:.3g} quantiles of the draws",
        "computed_by": computed_by, "model": record.model_name,
        "fit_method": record.method or "", "point_fit": int(point),
        "note": POINT_NOTE if point else "",
    }
    if point and posterior.sizes["chain"] > 1:
        attrs["note"] += (f" (the expected ratings of the {posterior.sizes['chain']} chains, "
                          "MAP restarts, averaged)")
    return _summary(sims, code, index, np.asarray(counts), n, interval, point, attrs)


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def _factor_structure(record: FitRecord, model: pm.Model | None) -> FactorStructure | None:
    """The model's declared factor structure when ``mu`` is bilinear plus biases
    (identity link, Gaussian ratings); else None (the generic path)."""
    if model is not None:
        info = model_info(model)
        if info is None:
            return None
        spec, config = info.spec, info.config
    elif record.is_custom:
        return None
    else:
        spec, config = get_spec(record.model_name), record.config
    if spec.factor_structure is None:
        return None
    structure = spec.factor_structure(config)
    if (structure.unsupported or structure.features or structure.implicit or structure.context
            or structure.link != "identity"
            or structure.likelihood != "gaussian"):
        return None
    return structure


def _has_factor_vars(posterior: xr.Dataset, structure: FactorStructure) -> bool:
    names = ["user_factors", "item_factors"]
    names += ["user_bias", "item_bias"] if structure.biases else []
    return all(name in posterior for name in names)


def _samples(da: xr.DataArray, positions, dim: str, point: bool) -> np.ndarray:
    """(samples, units, features) of a (chain, draw, unit[, factor]) variable; a point's
    chains side by side along the features (so that one sample is their average)."""
    da = da if positions is None else da.isel(draw=positions)
    dims = ("chain", "draw", dim) + (("factor",) if "factor" in da.dims else ())
    arr = da.transpose(*dims).values
    arr = arr if arr.ndim == 4 else arr[..., None]
    n_chain, n_draw, n_units, width = arr.shape
    if point:  # one draw per chain: chains x features side by side
        return arr[:, 0].transpose(1, 0, 2).reshape(1, n_units, n_chain * width)
    return arr.reshape(n_chain * n_draw, n_units, width)


def _factor_similarity(posterior: xr.Dataset, positions, point: bool, side: _Side, code: int,
                       biases: bool) -> np.ndarray:
    """Draws (samples, units) of the similarity from the factor matrices (fast path).

    With ``x = (b, U)`` across and ``w = (1, V)`` per unit, the scatter matrix of ``x`` is
    taken in blocks, ``S_bb``, ``S_bU``, ``S_UU`` (never concatenating ``b`` to ``U``), and
    ``w_j' S w_f = S_bb + S_bU.V_f + S_bU.V_j + V_j' S_UU V_f``.
    """
    across = _samples(posterior[f"{side.across}_factors"], positions, side.across, point)
    units = _samples(posterior[f"{side.unit}_factors"], positions, side.unit, point)
    # a point's chains side by side: each enters w with a 1, so their biases add up
    bias = (_samples(posterior[f"{side.across}_bias"], positions, side.across, point).sum(-1)
            if biases else None)
    n_samples, n_units, width = units.shape
    n_across = across.shape[1]
    step = max(1, FAST_BLOCK_ELEMENTS // (max(n_units, n_across) * width))
    out = np.empty((n_samples, n_units))
    for start in range(0, n_samples, step):
        block = slice(start, min(n_samples, start + step))
        x, w = across[block], units[block]
        x_sum = x.sum(axis=1)  # (samples, width)
        s_uu = np.matmul(x.transpose(0, 2, 1), x) - x_sum[:, :, None] * x_sum[:, None, :] / n_across
        wc = np.matmul(w, s_uu)  # (samples, units, width)
        cov = np.matmul(wc, w[:, code, :, None])[..., 0]
        var = np.einsum("snf,snf->sn", wc, w)
        if bias is not None:
            b = bias[block]
            b_sum = b.sum(axis=1)
            s_bb = np.einsum("su,su->s", b, b) - b_sum**2 / n_across
            s_bu = np.matmul(b[:, None, :], x)[:, 0] - b_sum[:, None] * x_sum / n_across
            g = np.matmul(w, s_bu[:, :, None])[..., 0]  # (samples, units): S_bU . w_j
            cov += s_bb[:, None] + g + g[:, code, None]
            var += s_bb[:, None] + 2 * g
        out[block] = _ratio(cov, var, var[:, code:code + 1])
    return out


def _ratio(cov: np.ndarray, var: np.ndarray, var_focal: np.ndarray) -> np.ndarray:
    """Correlations, NaN where a variance is zero (a constant column), clipped to [-1, 1]."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.clip(cov / np.sqrt(var * var_focal), -1.0, 1.0)


def _graph_similarity(model: pm.Model, posterior: xr.Dataset, positions, point: bool,
                      side: _Side, code: int, n_units: int, n_across: int) -> np.ndarray:
    """Draws (samples, units) of the similarity, ``mu`` evaluated by the model's graph
    for every ``across`` unit and a chunk of candidates at a time (generic path)."""
    evaluator = draw_evaluator(model, ("mu",))
    post = posterior[evaluator.inputs]
    post = post if positions is None else post.isel(draw=positions)
    n_chain, n_draw = post.sizes["chain"], post.sizes["draw"]
    others = np.delete(np.arange(n_units), code)
    per_chunk = max(1, PAIRS_PER_CHUNK // n_across - 1)
    out = np.empty((1 if point else n_chain, 1 if point else n_draw, n_units))
    out[..., code] = 1.0
    for start in range(0, len(others), per_chunk):
        columns = np.concatenate([[code], others[start:start + per_chunk]])
        across = np.repeat(np.arange(n_across), len(columns))
        units = np.tile(columns, n_across)
        ucodes, icodes = (across, units) if side.unit == "item" else (units, across)
        with swapped_pairs(model, ucodes, icodes):
            for block, got in iter_draw_blocks(post, evaluator, n_pairs=len(ucodes)):
                mu = got["mu"]  # (chain, draws, pairs)
                if point:
                    mu = mu.mean(axis=0, keepdims=True)
                c, d = mu.shape[:2]
                mu = mu.reshape(c * d, n_across, len(columns))
                mu = mu - mu.mean(axis=1, keepdims=True)
                cov = np.einsum("san,sa->sn", mu[:, :, 1:], mu[:, :, 0])
                var = np.einsum("san,san->sn", mu, mu)
                out[:, block, columns[1:]] = _ratio(cov, var[:, 1:], var[:, :1]).reshape(c, d, -1)
    return out.reshape(-1, n_units)


# ---------------------------------------------------------------------------------------------
# summaries
# ---------------------------------------------------------------------------------------------
def _prob_top_n(sims: np.ndarray, n: int) -> np.ndarray:
    """Share of draws (rows) in which each candidate (column) is among the ``n`` largest
    (a NaN draw counts as the smallest)."""
    filled = np.where(np.isnan(sims), -np.inf, sims)
    if n >= sims.shape[1]:
        return np.ones(sims.shape[1])
    top = np.argpartition(-filled, n - 1, axis=1)[:, :n]
    return np.bincount(top.ravel(), minlength=sims.shape[1]) / sims.shape[0]


def _summary(sims: np.ndarray, code: int, index, counts: np.ndarray, n: int, interval: float,
             point: bool, attrs: dict) -> xr.Dataset:
    others = np.delete(np.arange(sims.shape[1]), code)
    draws = sims[:, others]
    finite = ~np.isnan(draws)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(finite.any(0), np.where(finite, draws, 0).sum(0) / finite.sum(0), np.nan)
    nan = np.full(len(others), np.nan)
    if point:
        lower, upper, prob = nan, nan, nan
    else:
        lower, upper = nan.copy(), nan.copy()
        probs = [(1 - interval) / 2, (1 + interval) / 2]
        whole, some = finite.all(0), finite.any(0) & ~finite.all(0)
        if whole.any():  # np.quantile is vectorised; nanquantile loops over columns
            lower[whole], upper[whole] = np.quantile(draws[:, whole], probs, axis=0)
        if some.any():
            lower[some], upper[some] = np.nanquantile(draws[:, some], probs, axis=0)
        prob = _prob_top_n(draws, n)
    order = np.lexsort((np.arange(len(others)), -np.where(np.isnan(mean), -np.inf, mean)))[:n]
    ids = np.asarray(index.to_numpy()[others[order]])
    variables = {"mean": mean, "lower": lower, "upper": upper, "prob_top_n": prob,
                 "n_ratings": counts[others].astype(np.int64)}
    return xr.Dataset({k: ("neighbour", np.asarray(v)[order]) for k, v in variables.items()},
                      coords={"neighbour": ids}, attrs=attrs)
