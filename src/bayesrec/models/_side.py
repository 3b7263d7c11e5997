r"""Side information and implicit feedback as parts of a factor model's prior.

Shared by :func:`~bayesrec.models.pmf.pmf` and :func:`~bayesrec.models.bpmf.bpmf`.

**Features** (Porteous, Asuncion & Welling 2010; Simm et al. 2015, "Macau"): the
prior mean of a user's factor vector and bias is linear in the user's features
:math:`x_u` (encoded by :mod:`bayesrec.data.features`),

.. math::

    \mathbb E[U_u] = x_u^\top B_U, \quad \mathbb E[b_u] = x_u^\top \beta_U, \qquad
    B_U \sim \mathcal N(0, \lambda_U^2), \ \beta_U \sim \mathcal N(0, \lambda_{bU}^2), \
    \lambda \sim \text{Gamma}(2, 2 / s)

with learned shrinkage scales :math:`\lambda`; the same for items.

**Implicit feedback** (Koren 2008, SVD++): a user's factor vector gains
:math:`|N(u)|^{-1/2} \sum_{j \in N(u)} y_j`, with :math:`N(u)` the items the user
rated in the *training* ratings and :math:`y_j \sim \mathcal N(0, s_y^2)` (a fixed
prior sd ``implicit_sd`` in PMF, a learned one in BPMF, see :func:`implicit_sums`);
symmetrically for items (the users who rated them).

**Context** (``context="day"``, as a factorisation machine's context feature): each
day of the training ratings gets a bias and a factor vector that interacts with the
user's and the item's, :math:`e_d + (U_u + V_i)^\top D_d` (:func:`day_context`).

The options are resolved once, when the model is built, into plain values that the
model's config records (so that a fit can rebuild its model and a saved fit
round-trips): a feature option becomes the dict ``{"source", "names", "rows",
"encoder"}`` (where it came from, ``"auto"`` or ``"DataFrame"``; the encoded matrix of
the model's id universe, rows in id order; and the encoding rules for ids seen later).
That puts the matrix in the config JSON: about 56,000 numbers (1 MB of text) for
MovieLens 100K's users and items, fine at that size, heavy for millions of ids.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.sparse as psp
import scipy.sparse as sps

from bayesrec.data.context import day_codes, day_labels, day_universe
from bayesrec.data.features import FeatureEncoder
from bayesrec.data.ratings import Ratings
from bayesrec.errors import InputError

__all__ = ["CONTEXTS", "IMPLICIT", "FeatureBlock", "bias_mean", "check_context",
           "check_implicit", "day_context", "extend_features", "extend_side_options",
           "feature_blocks", "feature_mean", "feature_sides", "implicit_sides",
           "implicit_sums", "resolve_features", "with_implicit"]

IMPLICIT = (None, "user", "item", "both")


def check_implicit(implicit) -> str | None:
    if implicit not in IMPLICIT:
        raise InputError(f"implicit must be one of {IMPLICIT}, got {implicit!r}")
    return implicit


CONTEXTS = (None, "day")


def check_context(context) -> str | None:
    if context not in CONTEXTS:
        raise InputError(f"context must be one of {CONTEXTS}, got {context!r}")
    return context


def feature_sides(config) -> tuple[str, ...]:
    """The sides (``"user"``, ``"item"``) whose features a config sets."""
    return tuple(side for side in ("user", "item") if config.get(f"{side}_features") is not None)


def _resolved(option) -> bool:
    return isinstance(option, dict) and {"names", "rows", "encoder"} <= set(option)


def resolve_features(option, ratings: Ratings, side: str) -> dict | None:
    """A feature option (None, ``"auto"``, a DataFrame indexed by id, or a resolved dict)
    as the resolved dict for the universe of ``ratings`` (or None)."""
    if option is None:
        return None
    option_in = option
    ids = ratings.users if side == "user" else ratings.items
    if _resolved(option):
        rows = np.asarray(option["rows"], dtype=np.float64)
        if rows.ndim != 2 or rows.shape != (len(ids), len(option["names"])):
            raise InputError(f"{side}_features holds a matrix of shape {rows.shape}, but the "
                             f"model has {len(ids)} {side}s and {len(option['names'])} "
                             "features")
        return option
    if isinstance(option, str):
        if option != "auto":
            raise InputError(f"{side}_features must be None, 'auto' (the ratings' "
                             f"{side}_info) or a DataFrame indexed by {side} id, got {option!r}")
        option = ratings.user_info if side == "user" else ratings.item_info
        if option is None:
            raise InputError(f"{side}_features='auto' reads the ratings' {side}_info, but "
                             f"these ratings have none; pass a DataFrame indexed by {side} "
                             f"id, or Ratings with {side}_info")
    elif not isinstance(option, pd.DataFrame):
        raise InputError(f"{side}_features must be None, 'auto' or a pandas DataFrame indexed "
                         f"by {side} id, got {type(option).__name__}")
    source = "auto" if isinstance(option_in, str) else "DataFrame"
    encoder = FeatureEncoder.fit(option, ids, side)
    return {"source": source, "names": encoder.names,
            "rows": encoder.transform(option, ids, side).tolist(), "encoder": encoder.to_dict()}


def extend_features(resolved: dict, new_ids: list, info, side: str) -> tuple[dict, list]:
    """``resolved`` with rows for ``new_ids`` appended, and the new ids without features.

    A new id's row comes from ``info`` (a DataFrame indexed by id) under the fitted
    encoding rules; an id without a row gets the mean row of the fitted ids (the
    average feature vector) and is returned in the second list.
    """
    rows = np.asarray(resolved["rows"], dtype=np.float64)
    new = np.tile(rows.mean(axis=0), (len(new_ids), 1))
    known = []
    if info is not None:
        if not isinstance(info, pd.DataFrame):
            raise InputError(f"{side}_features= must be a DataFrame indexed by {side} id, got "
                             f"{type(info).__name__}")
        known = [k for k, i in enumerate(new_ids) if i in info.index]
        if known:
            encoder = FeatureEncoder.from_dict(resolved["encoder"])
            new[known] = encoder.transform(info, [new_ids[k] for k in known], side)
    have = set(known)
    missing = [i for k, i in enumerate(new_ids) if k not in have]
    return {**resolved, "rows": np.vstack([rows, new]).tolist()}, missing


def extend_side_options(config: dict, new_users: list, new_items: list, user_info=None,
                        item_info=None) -> tuple[dict, dict]:
    """A model config whose resolved feature options also hold rows for new ids.

    Returns ``(config, missing)``; ``missing`` maps ``"user"``/``"item"`` to the new ids
    that had no feature row (they got the mean row, see :func:`extend_features`).  A
    config without features comes back unchanged.
    """
    config, missing = dict(config), {}
    for side, new, info in (("user", new_users, user_info), ("item", new_items, item_info)):
        option = config.get(f"{side}_features")
        if _resolved(option) and len(new):
            config[f"{side}_features"], lacking = extend_features(option, list(new), info, side)
            if lacking:
                missing[side] = lacking
    return config, missing


class FeatureBlock:
    """The feature matrix of one side and its coefficient priors (inside a model context)."""

    def __init__(self, side: str, resolved: dict, n_factors: int, p: dict):
        self.side = side
        dim = f"{side}_feature"
        pm.modelcontext(None).add_coord(dim, resolved["names"])
        self.x = pm.Data(f"{side}_features", np.asarray(resolved["rows"], dtype=np.float64),
                         dims=(side, dim))
        self.n_factors, self.p, self.dim = n_factors, p, dim

    def factor_mean(self):
        """``X @ B`` with ``B`` (``{side}_feature_coef``, dims (feature, factor))."""
        return self.x @ _scaled(f"{self.side}_feature_coef", f"{self.side}_feature_sd",
                                self.p["feature_coef_scale"], (self.dim, "factor"))

    def bias_mean(self):
        """``X @ beta`` with ``beta`` (``{side}_bias_feature_coef``, dims (feature,))."""
        return self.x @ _scaled(f"{self.side}_bias_feature_coef", f"{self.side}_bias_feature_sd",
                                self.p["bias_feature_coef_scale"], (self.dim,))


def _scaled(name: str, sd_name: str, scale: float, dims: tuple, centred: bool = False):
    """``name ~ Normal(0, sd^2)`` with ``sd ~ Gamma(2, 2 / scale)``, non-centred:
    ``name = sd * name_std`` with ``name_std ~ Normal(0, 1)`` (a deterministic with the
    same dims).  Centred, the joint mode of many coefficients and their scale sits at
    scale 0 (the funnel), where MAP and mean-field ADVI collapse; non-centred it does not.
    ``centred=True`` gives ``name`` itself that prior (for a sampler's centred twin).
    """
    sd = pm.Gamma(sd_name, 2.0, 2.0 / scale)
    if centred:
        return pm.Normal(name, 0.0, sd, dims=dims)
    z = pm.Normal(f"{name}_std", 0.0, 1.0, dims=dims)
    return pm.Deterministic(name, sd * z, dims=dims)


def feature_blocks(ratings: Ratings, user_features, item_features, n_factors: int, p: dict):
    """``{side: FeatureBlock}`` for the sides with features, and their resolved options."""
    blocks, resolved = {}, {}
    for side, option in (("user", user_features), ("item", item_features)):
        r = resolve_features(option, ratings, side)
        if r is not None:
            blocks[side], resolved[f"{side}_features"] = FeatureBlock(side, r, n_factors, p), r
    return blocks, resolved


def feature_mean(blocks: dict, side: str):
    """The feature part of a side's factor prior mean (0 without features)."""
    return blocks[side].factor_mean() if side in blocks else 0.0


def bias_mean(blocks: dict, side: str):
    """The feature part of a side's bias prior mean (0 without features)."""
    return blocks[side].bias_mean() if side in blocks else 0.0


def implicit_sides(config) -> tuple[str, ...]:
    """The sides whose factor rows gain an implicit-feedback sum, for a model's config."""
    return {None: (), "user": ("user",), "item": ("item",),
            "both": ("user", "item")}[config.get("implicit")]


def with_implicit(factors, sums: dict, side: str):
    """A side's factor rows plus its implicit-feedback sum, when it has one."""
    return factors + sums[side] if side in sums else factors


def implicit_sums(ratings: Ratings, implicit: str | None, n_factors: int, p: dict, *,
                  learned: bool = False, centred: bool = True) -> dict:
    r"""``{side: |N|^{-1/2} sum of the other side's implicit factors}`` (inside a model
    context), deterministics ``user_implicit_sum`` / ``item_implicit_sum`` (side, factor).

    The implicit factors are ``item_implicit`` (item, factor), the :math:`y_j` users
    gain, and ``user_implicit`` (user, factor), the ones items gain, each
    ``Normal(0, s_y^2)``.  With ``learned=False`` (PMF) :math:`s_y` is the fixed prior
    setting ``implicit_sd`` (as SVD++'s ridge penalty).  With ``learned=True`` (BPMF) each
    block has its own learned scale ``item_implicit_sd`` / ``user_implicit_sd`` ~
    Gamma(2, 2 / ``implicit_sd``) (as a factorisation machine learns a variance per
    group of columns); ``centred=False`` writes ``y = s_y * y_std``.  Why: with the
    fixed sd (commit cc3e00b), on MovieLens u1, the posterior of the ``y`` stayed at the
    prior scale (RMS 0.20 under a fixed sd
    0.2, 0.89 under 1.0), and BPMF-by-Gibbs' test RMSE with ``implicit="both"`` went from
    0.8878 (sd 0.2) through 0.8927 (0.5, the default) to 0.9163 (1.0): the fixed setting
    decided the fit.  Point estimates are another matter: centred, MAP collapses a
    learned scale to 0 (the funnel); non-centred, MAP inflates it (to 8 on simulated
    data, where it overfitted, test RMSE 0.64 against 0.60 without the term), which is
    why PMF, the point-estimate model, keeps the fixed sd.  The sets are the training
    pairs of ``ratings``; the sum is a constant sparse matrix (a row per user, weights
    ``|N(u)|^{-1/2}`` at the pairs) times ``y``: vectorised over posterior draws it is one
    sparse product, 18x faster than the gather and scatter-add it replaced (5 ms a draw on
    MovieLens 100K, which made prediction the slowest part of a Gibbs fit).
    """
    out = {}
    if implicit is None:
        return out
    for side in implicit_sides({"implicit": implicit}):
        other = "item" if side == "user" else "user"
        dims = (other, "factor")
        if learned:
            y = _scaled(f"{other}_implicit", f"{other}_implicit_sd", p["implicit_sd"], dims,
                        centred=centred)
        else:
            y = pm.Normal(f"{other}_implicit", 0.0, p["implicit_sd"], dims=dims)
        rows = ratings.user if side == "user" else ratings.item
        cols = ratings.item if side == "user" else ratings.user
        n = ratings.n_users if side == "user" else ratings.n_items
        counts = np.bincount(rows, minlength=n)
        weight = 1.0 / np.sqrt(np.maximum(counts, 1))
        pairs = sps.csr_matrix((weight[rows], (rows, cols)),  # repeats add up
                               shape=(n, ratings.n_items if side == "user" else ratings.n_users))
        total = psp.structured_dot(psp.as_sparse_or_tensor_variable(pairs), y)
        out[side] = pm.Deterministic(f"{side}_implicit_sum", total, dims=(side, "factor"))
    return out


def day_context(ratings: Ratings, context: str | None, *, biases: bool, p: dict,
                learned: bool = False):
    r"""The day of each rating as a factorisation-machine context (inside a model context).

    Returns None without a context, else ``term(rows)``: given the (effective) user and
    item factor rows of the ratings, :math:`e_{d} + (U_u + V_i)^\top D_{d}` for each
    rating's day :math:`d`, with ``day_factors`` :math:`D` (day, factor) ``~ N(0,
    day_factor_sd^2)`` and ``day_bias`` :math:`e` (day) ``~ N(0, day_bias_sd^2)`` (with
    ``biases`` only): fixed prior sds, or with ``learned`` (BPMF) learned ones,
    ``day_factor_sd`` ~ Gamma(2, 2 / ``p["day_factor_sd"]``) and the same for
    ``day_bias_sd`` (centred: the days are many ratings each, and their scale is what the
    ``"unseen"`` day is predicted with).  The days are those of the training ratings and
    the slot ``"unseen"`` (see :mod:`bayesrec.data.context`), the data ``day_idx`` (obs)
    their codes.
    """
    if context is None:
        return None
    if ratings.timestamp is None:
        raise InputError("context='day' needs the time of each rating, but these ratings have "
                         "none: give them timestamps (Ratings.from_arrays(timestamps=...), or a "
                         "'timestamp' column of the DataFrame or file) as Unix seconds, "
                         "datetime64, datetime objects or ISO 8601 strings")
    days = day_universe(ratings.timestamp)
    pm.modelcontext(None).add_coord("day", days)
    day_idx = pm.Data("day_idx", day_codes(day_labels(ratings.timestamp), days), dims="obs")
    if learned:
        factors = _scaled("day_factors", "day_factor_sd", p["day_factor_sd"], ("day", "factor"),
                          centred=True)
        bias = (_scaled("day_bias", "day_bias_sd", p["day_bias_sd"], ("day",), centred=True)
                if biases else None)
    else:
        factors = pm.Normal("day_factors", 0.0, p["day_factor_sd"], dims=("day", "factor"))
        bias = pm.Normal("day_bias", 0.0, p["day_bias_sd"], dims="day") if biases else None

    def term(user_rows, item_rows):
        out = ((user_rows + item_rows) * factors[day_idx]).sum(axis=-1)
        return out + bias[day_idx] if bias is not None else out

    return term
