r"""Fold new users' ratings into a factor-model fit (PMF, BPMF) without refitting.

A user's variables in PMF and BPMF, :math:`\theta_u = (U_u, b_u)`, enter the model
only through their own prior and their own ratings.  Given everything else
(items, offset, noise, hyperparameters), their conditional is therefore Gaussian
and exact.  For a new user :math:`u` with ratings :math:`r_j` of known items
:math:`j`, one posterior draw's item factors :math:`V_j`, item biases :math:`c_j`,
offset :math:`m` and noise precision :math:`\tau = \sigma^{-2}`, and the user-side
prior :math:`U_u \sim \mathcal N(\mu_u, \Sigma_u)`:

.. math::

    \Lambda_u &= \Sigma_u^{-1} + \tau \sum_j V_j V_j^\top \\
    U_u \mid \cdot &\sim \mathcal N\Big(\Lambda_u^{-1}\big(\Sigma_u^{-1}\mu_u
        + \tau \textstyle\sum_j (r_j - m - c_j)\, V_j\big),\ \Lambda_u^{-1}\Big).

PMF: :math:`\mu_u = 0`, :math:`\Sigma_u = \sigma_U^2 I`.  BPMF: :math:`\mu_u` and
:math:`\Sigma_u = L_U L_U^\top` are that draw's ``user_factor_mean`` and
``user_factor_chol``.  Without biases :math:`m = c_j = 0`.  With biases the user
bias :math:`b_u \sim \mathcal N(0, s_b^2)` (PMF: the fixed ``bias_sd``; BPMF: the
draw's ``bias_sd``) is folded in as an extra coordinate: :math:`\theta_u = (U_u,
b_u)` with features :math:`x_j = (V_j, 1)`, prior precision :math:`\mathrm{diag}
(\Sigma_u^{-1}, s_b^{-2})` and prior mean :math:`(\mu_u, 0)`; the formula above
then holds with :math:`x_j` in place of :math:`V_j`, so the factors and the bias
are drawn jointly (they are correlated given the ratings).

Non-centred BPMF stores the standardised factors :math:`z_u` with :math:`U_u =
\mu_U + L_U z_u`: :math:`z_u` is drawn from its own conditional (features
:math:`L_U^\top V_j`, residuals :math:`r_j - m - c_j - \mu_U^\top V_j`, prior
:math:`\mathcal N(0, I)`), the same law pushed through that affine map, and both
``user_factors_std`` and ``user_factors`` are stored.

The conditionals, their assembly and the batched draws are the Gibbs sampler's
(:func:`~bayesrec.inference.gibbs.steps.conditional_inputs`,
:func:`~bayesrec.inference.gibbs.kernels.draw_rows`), on a
:class:`~bayesrec.inference.gibbs.layout.FactorLayout` of the new ratings.

**What is approximated.**  Each posterior draw of the known variables is kept and
completed with a draw of the new users' variables from their exact conditional:
the pairs are draws from :math:`p(\Theta \mid R)\, p(\theta_{new} \mid \Theta,
R_{new})`, not from the posterior given all ratings, because the new ratings do
not update the items or the hyperparameters.  That is the usual fold-in: close
when the new ratings are few next to the training ratings; refit to let them
count everywhere.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import xarray as xr

from bayesrec.data.ratings import Ratings
from bayesrec.errors import InputError, UnknownIdError
from bayesrec.inference.gibbs.kernels import draw_rows
from bayesrec.inference.gibbs.layout import FactorLayout, factor_structure_of, layout_of
from bayesrec.inference.gibbs.steps import conditional_inputs
from bayesrec.inference.record import GROUP, FitRecord, encode_ids, rehash
from bayesrec.inference.start import check_seed
from bayesrec.models.registry import build_model
from bayesrec.provenance import now

__all__ = ["fold_in"]


def fold_in(fit: xr.DataTree, ratings_of_new_users: Ratings, *,
            random_seed: int | None = None) -> xr.DataTree:
    """A fit whose id universe also holds new users, given their ratings, without refitting.

    For every posterior draw, each new user's factors (and bias, if the model has
    biases) are drawn from their exact Gaussian conditional given that draw's item
    factors, item biases, offset, noise sd and user-side prior (see the module
    docstring for the math).  Known users' and items' variables are left as they
    are.

    Parameters
    ----------
    fit : DataTree
        A fit of the ``pmf`` or ``bpmf`` model (identity link) by any method, from
        :func:`bayesrec.inference.fit` (or loaded with :func:`~bayesrec.inference.load_fit`).
    ratings_of_new_users : Ratings
        Ratings by users the fit has never seen, of items it knows, on its rating
        scale.  Only the ids that occur in the ratings count (a universe inherited
        from a larger data set is fine).
    random_seed : int, optional
        Seed of the draws; ``None`` draws one (recorded in ``attrs["fold_in"]``).

    Returns
    -------
    DataTree
        The same groups as ``fit``: the ``posterior`` with the new users appended
        along ``user``; ``observed_data``/``constant_data`` holding the training
        ratings followed by the new ones (so that :func:`~bayesrec.inference.recommend`
        excludes the items they rated); the ``bayesrec`` id universe and hash updated.
        Method groups (``sample_stats``, ``optimizer_result``, ``advi``) are copied
        unchanged and describe the original fit.  ``attrs["fold_in"]`` (JSON) lists
        each fold-in applied: users, ratings, seed, how the users were set.  MAP
        fits (``method == "map"``) are point estimates: the new users get their
        conditional *mode* (the conditional mean), the MAP of their variables given
        the rest, rather than a random draw.

    Raises
    ------
    InputError
        A model other than pmf/bpmf (new users of other models are predicted by
        ``predict(..., unknown="population")``), a logistic link, item ids the fit does not know
        (:class:`~bayesrec.errors.UnknownIdError`), user ids it already knows, or
        ratings off its scale.
    """
    record = FitRecord(fit)
    structure = factor_structure_of(record.model_name, record.config, "fold-in")
    if structure.features:  # the new users' prior mean would need their features
        shown = "/".join(f"{side}_features" for side in structure.features)
        raise InputError(f"fold-in does not support {shown} yet; use map, nuts or advi (new users of such a fit are predicted "
                         "from their features by predict(..., user_features=...))")
    if structure.context:  # the new users' ratings would need their days in the model
        raise InputError(f"fold-in does not support context={structure.context!r} yet; refit "
                         "with the new users' ratings in the training data")
    if structure.implicit:  # the new users' sums would need their own implicit sets
        raise InputError(f"fold-in does not support implicit={record.config.get('implicit')!r} "
                         "yet; refit with the new users' ratings in the training data")
    users = record.users
    new = _new_ratings(ratings_of_new_users, record.ratings)
    seed = check_seed(random_seed)
    point_fit = record.method == "map"
    layout = layout_of(build_model(record.model_name, new, **record.config), what="fold-in")
    posterior = fit["posterior"].to_dataset()
    new_values = _draw_new_users(layout, posterior, np.random.default_rng(seed),
                                 mean_only=point_fit)
    record = {"n_users": new.n_users, "n_ratings": new.n_ratings, "random_seed": seed,
              "users_set_to": "conditional mean" if point_fit else "conditional draws",
              "base_hash": fit.attrs.get("bayesrec_hash")}
    return _extended_fit(fit, posterior, users, new, new_values, record)


# ---------------------------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------------------------
def _new_ratings(ratings, train: Ratings) -> Ratings:
    """The new ratings re-coded: users 0..n_new-1 (those that rate), the fit's item codes."""
    if not isinstance(ratings, Ratings):
        raise InputError(f"fold_in needs the new users' ratings as a bayesrec.Ratings, got "
                         f"{type(ratings).__name__}")
    if ratings.n_ratings == 0:
        raise InputError("no ratings to fold in")
    rated_items = ratings.items[np.unique(ratings.item)]
    unknown = rated_items[train.item_codes_of(rated_items, unknown="mask") < 0]
    if len(unknown):
        raise UnknownIdError(
            f"unknown item id(s) {unknown[:5].tolist()}"
            + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
            + f": fold-in needs ratings of the {train.n_items} items the fit knows; drop "
            "those ratings, or refit with them"
        )
    raters = ratings.users[np.unique(ratings.user)]
    known = raters[train.user_codes_of(raters, unknown="mask") >= 0]
    if len(known):
        raise InputError(
            f"user id(s) {known[:5].tolist()}"
            + (f" and {len(known) - 5} more" if len(known) > 5 else "")
            + " are already in the fit: fold-in adds new users only (refit to use new "
            "ratings of known users)"
        )
    scale = train.scale
    off = ~scale.contains(ratings.rating)
    if off.any():
        raise InputError(f"{int(off.sum())} rating(s) are off the fit's scale {scale}: for "
                         f"example {ratings.rating[off][:5].tolist()}")
    return Ratings.from_arrays(ratings.user_ids, ratings.item_ids, ratings.rating, scale=scale,
                               user_ids=raters, item_ids=train.items)


# ---------------------------------------------------------------------------------------------
# the draws
# ---------------------------------------------------------------------------------------------
def _draw_new_users(layout: FactorLayout, posterior: xr.Dataset, rng: np.random.Generator,
                    *, mean_only: bool) -> dict[str, np.ndarray]:
    """The new users' variables per draw, arrays of shape (chain, draw, new user[, factor]).

    ``layout`` is the layout of the model on the new ratings alone (its users are
    the new users); the other variables come from each posterior draw.
    """
    user = layout.user
    k, dim = layout.n_factors, layout.n_factors + (1 if layout.biases else 0)
    names = [n for n in layout.value_names if n not in (user.factors, user.bias)]
    missing = [n for n in names if n not in posterior]
    if missing:
        raise InputError(f"the fit's posterior lacks {missing}, which fold-in needs")
    stored = {n: posterior[n].values for n in names}
    n_chain, n_draw = posterior.sizes["chain"], posterior.sizes["draw"]
    shape = (n_chain, n_draw, user.n_rows)
    out = {"user_factors": np.empty((*shape, k))}
    if not layout.centred:
        out[user.factors] = np.empty((*shape, k))
    if layout.biases:
        out[user.bias] = np.empty(shape)
    for c in range(n_chain):
        for d in range(n_draw):
            point = layout.point_from_draw({n: v[c, d] for n, v in stored.items()})
            inputs = conditional_inputs(
                layout, point, "user", layout.factors_of(point, "item"),
                layout.bias_of(point, "item"), layout.offset(point), layout.sigma(point))
            eps = np.zeros((user.n_rows, dim)) if mean_only else rng.standard_normal(
                (user.n_rows, dim))
            theta = draw_rows(eps=eps, **inputs)
            point[user.factors] = theta[:, :k]
            if not layout.centred:  # the standardised factors, and U = mean + L z below
                out[user.factors][c, d] = theta[:, :k]
            out["user_factors"][c, d] = layout.factors_of(point, "user")
            if layout.biases:
                out[user.bias][c, d] = theta[:, k]
    return out


# ---------------------------------------------------------------------------------------------
# the extended fit
# ---------------------------------------------------------------------------------------------
def _extended_fit(fit: xr.DataTree, posterior: xr.Dataset, users: pd.Index, new: Ratings,
                  new_values: dict[str, np.ndarray], record: dict) -> xr.DataTree:
    """``fit`` with the new users' values, ratings and ids appended; attrs updated."""
    all_users = users.append(new.users).to_numpy()
    groups = {name: fit[name].to_dataset() for name in fit.children}
    groups["posterior"] = _extend_posterior(posterior, new_values, all_users)
    n_known = len(users)
    groups["observed_data"] = _append_obs(groups["observed_data"], {"rating": new.rating})
    groups["constant_data"] = _append_obs(groups["constant_data"],
                                          {"user_idx": new.user + n_known, "item_idx": new.item})
    ident = groups[GROUP]
    values, kinds = encode_ids(pd.Index(all_users))
    extended = xr.Dataset(coords={"user": values, "item": ident["item"].values},
                          attrs=dict(ident.attrs))
    if kinds is not None:
        extended["user_kind"] = ("user", kinds)
    if "item_kind" in ident:
        extended["item_kind"] = ("item", ident["item_kind"].values)
    groups[GROUP] = extended
    out = xr.DataTree.from_dict(groups)
    history = json.loads(fit.attrs.get("fold_in", "[]"))
    out.attrs = {**fit.attrs, "created_at": now(),
                 "fold_in": json.dumps([*history, record], default=str)}
    return rehash(out)


def _extend_posterior(posterior: xr.Dataset, new_values: dict[str, np.ndarray],
                      all_users: np.ndarray) -> xr.Dataset:
    """Every variable with a ``user`` dim gets the new users' values appended."""
    data = {}
    for name, var in posterior.data_vars.items():
        if "user" not in var.dims:
            data[name] = var.variable
            continue
        if name not in new_values or var.dims[:3] != ("chain", "draw", "user"):
            raise InputError(f"fold-in cannot extend the posterior variable {name} "
                             f"(dims {var.dims}): the factory changed; update "
                             "bayesrec.inference.foldin")
        values = np.concatenate([var.values, new_values[name].astype(var.dtype)], axis=2)
        data[name] = xr.Variable(var.dims, values, attrs=var.attrs)
    coords = {c: posterior.coords[c].variable for c in posterior.coords if c != "user"}
    coords["user"] = all_users
    return xr.Dataset(data, coords=coords, attrs=posterior.attrs)


def _append_obs(ds: xr.Dataset, new: dict[str, np.ndarray]) -> xr.Dataset:
    """``ds`` (dim ``obs``) with the new observations appended, ``obs`` renumbered."""
    if set(ds.data_vars) != set(new):
        raise InputError(f"fold-in expects training data {sorted(new)}, found "
                         f"{sorted(ds.data_vars)}")
    data = {name: ("obs", np.concatenate([ds[name].values,
                                          np.asarray(new[name]).astype(ds[name].dtype)]),
                   ds[name].attrs)
            for name in ds.data_vars}
    n = ds.sizes["obs"] + len(next(iter(new.values())))
    return xr.Dataset(data, coords={"obs": np.arange(n)}, attrs=ds.attrs)
