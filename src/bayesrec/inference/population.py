"""Predictions for users and items the fit has never seen: the population policy.

Every bayesrec model treats users (and items) as exchangeable given the
population-level parameters (hyperparameters, or fixed priors): a user's own
variables (factors, bias, memberships, ...) depend on the rest of the model only
through them.  A user who is new at prediction time has no ratings, so the
posterior of its variables is their conditional prior given the population
parameters.  Per posterior draw we therefore

1. rebuild the model on the training ratings with the id universe extended by
   the new ids (they get variables but no ratings),
2. draw the new units' variables from the model's own generative graph, given
   that draw's population parameters (``pm.sample_posterior_predictive`` with the
   per-unit variables left out of the trace),
3. keep the known units' variables at their posterior values.

Predictions for new users thus average over the population distribution, with
the correspondingly wide uncertainty; nothing is indexed out of bounds.  This is
generic: a variable is *per unit* when it carries a ``user`` or ``item`` dim.

**Side information.**  In a model with ``user_features`` / ``item_features`` the
features are part of the model (data ``user_features``, dims (user, user_feature)), so
a new id's variables are drawn around its own prior mean, for example
``X_new @ user_feature_coef``, once its feature row is known: the row comes from
``user_features=`` / ``item_features=`` (DataFrames indexed by id) or else from the
``user_info`` / ``item_info`` of the ratings the model was built with, encoded by the
rules fitted on the training ids.  A new id without a row gets the training ids'
mean feature row (the average user or item), with a warning: its predictions then
ignore the spread of features across the population, so their intervals are somewhat
narrower than a full population prediction would give.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr

from bayesrec.data.ratings import Ratings
from bayesrec.errors import UnknownIdError
from bayesrec.models._side import extend_side_options
from bayesrec.models.registry import build_model, model_info

__all__ = ["extend_with_new_ids"]


def _per_unit(model: pm.Model, names, unit_dims: set[str]) -> list[str]:
    dims = model.named_vars_to_dims
    return [n for n in names if unit_dims & set(dims.get(n) or ())]


def _warn_no_features(missing: dict) -> None:
    parts = [f"{len(ids)} new {side}(s) ({', '.join(map(repr, ids[:3]))}"
             f"{', ...' if len(ids) > 3 else ''})" for side, ids in missing.items()]
    warnings.warn(
        f"{' and '.join(parts)} have no features, but the model uses {' and '.join(missing)} "
        "features: they are predicted as the average of the training population (its mean "
        "feature row). Pass user_features= / item_features= (DataFrames indexed by id) to use "
        "their own.", UserWarning, stacklevel=4)


def extend_with_new_ids(model: pm.Model, posterior: xr.Dataset, new_users, new_items, *,
                        random_seed=None, user_features=None,
                        item_features=None) -> tuple[pm.Model, xr.Dataset, Ratings]:
    """A model and posterior whose id universe also holds ``new_users``/``new_items``.

    Returns ``(extended_model, extended_posterior, extended_ratings)``; the new
    units' variables are drawn from their conditional prior per posterior draw.
    ``user_features`` / ``item_features`` (DataFrames indexed by id) give new ids'
    features to a model that uses features (see the module docstring).
    """
    info = model_info(model)
    if info is None:
        shown = [*list(new_users)[:3], *list(new_items)[:3]]
        raise UnknownIdError(
            f"unknown id(s) {shown}: predicting ids the fit has never seen from the population "
            "distribution rebuilds the model on a larger id universe, which needs a model "
            "made by bayesrec.models.build_model; with a model of your own, predict known ids "
            "only (or extend the model's coords yourself)")
    train = info.ratings
    users = train.users.append(pd.Index(list(new_users))) if len(new_users) else train.users
    items = train.items.append(pd.Index(list(new_items))) if len(new_items) else train.items
    extended = Ratings(user=train.user, item=train.item, rating=train.rating, users=users,
                       items=items, scale=train.scale, timestamp=train.timestamp)
    config, missing = extend_side_options(
        info.config, list(new_users), list(new_items),
        train.user_info if user_features is None else user_features,
        train.item_info if item_features is None else item_features)
    if missing:
        _warn_no_features(missing)
    ext_model = build_model(info.name, extended, **config)

    unit_dims = {d for d, new in (("user", new_users), ("item", new_items)) if len(new)}
    free = [rv.name for rv in ext_model.free_RVs]
    unit_free = _per_unit(ext_model, free, unit_dims)
    unit_all = _per_unit(ext_model, list(posterior.data_vars), unit_dims)
    base = posterior.drop_vars([v for v in unit_all if v in posterior])
    base = base.drop_vars([c for c in unit_dims if c in base.coords])
    drawn = pm.sample_posterior_predictive(
        xr.DataTree.from_dict({"posterior": base}), model=ext_model, var_names=unit_free,
        sample_vars=unit_free, freeze_vars=[v for v in free if v not in unit_free and v in base],
        random_seed=random_seed, progressbar=False,
    )["posterior_predictive"].to_dataset()

    out = base.copy()
    for name in unit_free:
        values = drawn[name].values.copy()
        dims = ext_model.named_vars_to_dims[name]
        known = posterior[name].values
        index = tuple(slice(0, known.shape[2 + k]) if d in unit_dims else slice(None)
                      for k, d in enumerate(dims))
        values[(slice(None), slice(None), *index)] = known
        out[name] = (("chain", "draw", *dims), values)
    out = out.assign_coords({d: np.asarray(ext_model.coords[d]) for d in unit_dims})
    return ext_model, out, extended
