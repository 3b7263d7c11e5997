"""The fit record: what a fit carries besides its draws, written once and read by everyone.

:func:`write_record` finishes every fit (whatever the method): it stores the training
data (``observed_data``, ``constant_data``) and a ``bayesrec`` group holding the id
universe, the rating scale, the model's registry name and config, and two hashes:

* ``model_hash`` covers everything that rebuilds the model (name, config, scale,
  ids, training data); it keys the in-process model cache, recomputed from the
  content each time, so an edited fit never meets the model of another;
* ``hash`` also covers the posterior draws: :func:`~bayesrec.inference.load_fit`
  refuses a file whose content does not match it.

:class:`FitRecord` is the one reader: training ratings, id universe (mapped to
codes by :class:`~bayesrec.data.Ratings` only), scale, model rebuild, posterior
thinning.  Prediction, diagnostics, fold-in and evaluation use it instead of
reading the groups their own way.

Any model that follows the data convention of the factories can be fitted,
predicted and diagnosed, also one that :func:`~bayesrec.models.build_model` did not
make (a hand-written factory, :func:`pymc.do`, :func:`pymc.observe`): coords
``user`` and ``item`` (the ids), data ``user_idx`` and ``item_idx`` (dim ``obs``),
a deterministic ``mu`` (dim ``obs``) and the observed ``rating`` (dim ``obs``).  Its
scale is the discrete scale of its ``rating_level`` coord when it has one, else the
scale :meth:`~bayesrec.data.RatingScale.infer` reads from its observed ratings.
Such a fit cannot rebuild its model: pass ``model=`` to prediction and diagnostics.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections import OrderedDict
from functools import cached_property

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr
from pymc.backends.arviz import find_constants, find_observations

from bayesrec.data.context import day_codes, day_labels
from bayesrec.data.ratings import Ratings
from bayesrec.data.scale import RatingScale
from bayesrec.errors import InputError
from bayesrec.inference.start import var_dims
from bayesrec.models.registry import build_model, model_info
from bayesrec.provenance import now, versions

__all__ = [
    "GROUP",
    "FitRecord",
    "check_fit",
    "model_from_fit",
    "posterior_of",
    "ratings_from_fit",
    "ratings_of_model",
    "swapped_pairs",
    "training_days",
    "day_codes_of",
    "thin_index",
    "thin_posterior",
    "write_record",
]

#: Name of the group holding the record.
GROUP = "bayesrec"
#: Groups whose content the record's ``hash`` covers (what predictions use).
HASHED_GROUPS = ("posterior", "observed_data", "constant_data")
_UNIT_DIMS = ("user", "item")

_MODEL_CACHE: OrderedDict[str, pm.Model] = OrderedDict()
_CACHE_SIZE = 4


# ---------------------------------------------------------------------------------------------
# small readers every consumer shares
# ---------------------------------------------------------------------------------------------
def check_fit(fit, name: str | None = None) -> None:
    """Raise unless ``fit`` is a DataTree with a posterior and a bayesrec record (``name``
    labels the fit in the message)."""
    label = f"fit {name!r}: " if name is not None else ""
    if not isinstance(fit, xr.DataTree) or "posterior" not in fit.children:
        raise InputError(
            f"{label}expected a fit (an xarray.DataTree with a posterior group from "
            f"bayesrec.fit), got {type(fit).__name__}"
        )
    if GROUP not in fit.children:
        raise InputError(f"{label}this DataTree was not made by bayesrec.fit: it has no "
                         "'bayesrec' group")


def posterior_of(fit) -> xr.Dataset:
    """The posterior Dataset of a fit (a DataTree), or the Dataset itself."""
    if isinstance(fit, xr.DataTree):
        if "posterior" not in fit.children:
            raise InputError("the fit has no posterior group")
        return fit["posterior"].to_dataset()
    if isinstance(fit, xr.Dataset):
        return fit
    raise InputError(f"expected a fit (DataTree) or a posterior Dataset, got {type(fit).__name__}")


def thin_index(n_chain: int, n_draw: int, max_draws: int | None) -> np.ndarray | None:
    """Evenly spaced draw positions (the same in every chain) keeping at most ``max_draws``
    draws in all, or None when all of them fit."""
    if max_draws is not None and (isinstance(max_draws, bool)
                                  or not isinstance(max_draws, (int, np.integer))
                                  or max_draws < 1):
        raise InputError(f"max_draws must be a positive integer or None, got {max_draws!r}")
    if max_draws is None or n_chain * n_draw <= max_draws:
        return None
    per_chain = max(1, int(max_draws) // n_chain)
    return np.unique(np.linspace(0, n_draw - 1, per_chain).round().astype(int))


def thin_posterior(posterior: xr.Dataset, max_draws: int | None, min_draws: int = 1) -> xr.Dataset:
    """At most ``max_draws`` draws in all (evenly spaced per chain); point fits are tiled.

    A MAP fit has one draw per chain: its predictive is the plug-in distribution,
    so the points are repeated to give ``min_draws`` draws in all (shared between
    the chains, e.g. MAP restarts) to sample rating noise.
    """
    n_chain, n_draw = posterior.sizes["chain"], posterior.sizes["draw"]
    if n_draw == 1 and min_draws > 1:
        per_chain = max(1, -(-min_draws // n_chain))
        return posterior.isel(draw=np.zeros(per_chain, dtype=int)).assign_coords(
            draw=np.arange(per_chain))
    idx = thin_index(n_chain, n_draw, max_draws)
    return posterior if idx is None else posterior.isel(draw=idx)


class swapped_pairs:
    """Context manager: point the model's ``user_idx``/``item_idx`` at other pairs.

    A model with a day context (data ``day_idx``, coord ``day``) also gets the pairs'
    day codes ``dcodes``; without them the pairs are on a day the fit has not seen (the
    ``"unseen"`` slot of :mod:`bayesrec.data.context`: the population of days).
    """

    def __init__(self, model: pm.Model, ucodes: np.ndarray, icodes: np.ndarray,
                 dcodes: np.ndarray | None = None):
        for name in ("user_idx", "item_idx"):
            if name not in model.named_vars:
                raise InputError(
                    f"the model has no data container {name!r}; bayesrec models declare "
                    "pm.Data('user_idx', ...) and pm.Data('item_idx', ...) with dims 'obs'"
                )
        self.model, self.new = model, {"user_idx": ucodes, "item_idx": icodes}
        if "day_idx" in model.named_vars:
            self.new["day_idx"] = (np.full(len(ucodes), len(model.coords["day"]) - 1)
                                   if dcodes is None else np.asarray(dcodes, dtype=np.int64))

    def __enter__(self):
        m = self.model
        self.old = {k: m[k].get_value() for k in self.new}
        self.old_obs = m.coords.get("obs")
        pm.set_data(self.new, model=m, coords={"obs": np.arange(len(self.new["user_idx"]))})
        return self

    def __exit__(self, *exc):
        pm.set_data(self.old, model=self.model, coords={"obs": np.asarray(self.old_obs)})
        return False


def day_codes_of(model: pm.Model, times, n: int | None = None, stacklevel: int = 3):
    """The day codes of ``n`` pairs at ``times`` for a model with a day context (None
    without one: other models ignore times), with a warning for pairs predicted on a day
    the fit has not seen or without a time (the population of days)."""
    if "day_idx" not in model.named_vars:
        return None
    days = list(model.coords["day"])
    if times is None:
        warnings.warn("the model has a day context (context='day'), but these pairs have no "
                      "timestamps: they are predicted on a day the fit has not seen (the "
                      "population of days, wider intervals). Pass timestamps= or pairs= with "
                      "timestamps to use the days' own effects.", UserWarning,
                      stacklevel=stacklevel)
        return None
    times = np.asarray(times)
    if times.ndim != 1 or (n is not None and len(times) != n):
        raise InputError(f"timestamps= must give one time per pair ({n}), got shape "
                         f"{times.shape}")
    labels = day_labels(times)
    codes = day_codes(labels, days)
    missing = pd.isna(labels)
    unseen = (codes == len(days) - 1) & ~missing
    if unseen.any():
        n_days = len(pd.unique(labels[unseen]))
        warnings.warn(f"{int(unseen.sum())} pair(s) on {n_days} day(s) the fit has not seen: "
                      "predicted with the population of days (the 'unseen' day, wider "
                      "intervals)", UserWarning, stacklevel=stacklevel)
    if missing.any():
        warnings.warn(f"{int(missing.sum())} pair(s) without a time (NaN, NaT or None): "
                      "predicted with the population of days (the 'unseen' day, wider "
                      "intervals)", UserWarning, stacklevel=stacklevel)
    return codes


def training_days(model: pm.Model) -> np.ndarray | None:
    """The day codes of the model's training ratings (None without a day context)."""
    return np.asarray(model["day_idx"].get_value()) if "day_idx" in model.named_vars else None


# ---------------------------------------------------------------------------------------------
# models that follow the data convention
# ---------------------------------------------------------------------------------------------
def _require_convention(model: pm.Model) -> None:
    missing = [n for n in ("user_idx", "item_idx", "rating") if n not in model.named_vars]
    missing += [f"coord {c!r}" for c in _UNIT_DIMS if model.coords.get(c) is None]
    if missing:
        raise InputError(
            f"the model does not follow bayesrec's data convention: it lacks {missing}. A "
            "model needs coords 'user' and 'item' (the ids), pm.Data('user_idx', codes, "
            "dims='obs') and pm.Data('item_idx', codes, dims='obs'), a deterministic 'mu' "
            "and the observed 'rating' (dims 'obs'); see the README, 'Writing your own model'"
        )


def scale_of_model(model: pm.Model) -> RatingScale:
    """The rating scale of a model: its ratings' (built by the registry), else the levels of
    its ``rating_level`` coord, else the scale inferred from its observed ratings."""
    info = model_info(model)
    if info is not None:
        return info.ratings.scale
    levels = model.coords.get("rating_level")
    if levels is not None:
        return RatingScale.from_levels(np.asarray(levels, dtype=float))
    observed = np.asarray(find_observations(model)["rating"], dtype=float)
    return RatingScale.infer(observed)


def ratings_of_model(model: pm.Model) -> Ratings:
    """The training ratings of a model (its data containers and observed ``rating``)."""
    info = model_info(model)
    if info is not None:
        return info.ratings
    _require_convention(model)
    scale = scale_of_model(model)
    rating = np.asarray(find_observations(model)["rating"])
    if np.issubdtype(rating.dtype, np.integer) and scale.levels is not None:
        rating = scale.values_of(rating)  # categorical models observe level codes
    return Ratings(user=np.asarray(model["user_idx"].get_value()).astype(np.int64),
                   item=np.asarray(model["item_idx"].get_value()).astype(np.int64),
                   rating=np.asarray(rating, dtype=float),
                   users=pd.Index(model.coords["user"]), items=pd.Index(model.coords["item"]),
                   scale=scale)


# ---------------------------------------------------------------------------------------------
# writing the record
# ---------------------------------------------------------------------------------------------
_ID_KINDS = {int: "int", str: "str", float: "float"}


def encode_ids(ids) -> tuple[np.ndarray, np.ndarray | None]:
    """Ids as an array netCDF can store, and each id's type when the types are mixed.

    Homogeneous integer or string ids are stored as they are (kinds ``None``);
    otherwise every id is stored as its string with its type (``int``, ``float``,
    ``str``), so that ``1`` and ``"1"`` stay apart after a round trip.
    """
    values = pd.Index(ids).to_numpy()
    if values.dtype != object:
        return values, None
    kinds = []
    for v in values:
        kind = next((k for t, k in _ID_KINDS.items() if type(v) is t), None)
        if kind is None and isinstance(v, np.generic):
            v = v.item()
            kind = next((k for t, k in _ID_KINDS.items() if type(v) is t), None)
        if kind is None:
            raise InputError(f"id {v!r} of type {type(v).__name__} cannot be stored in a fit; "
                             "ids must be integers, floats or strings")
        kinds.append(kind)
    if len(set(kinds)) == 1 and kinds[0] == "str":
        return values.astype(str), None
    return np.array([str(v) for v in values]), np.array(kinds)


def decode_ids(values: np.ndarray, kinds: np.ndarray | None) -> pd.Index:
    """The inverse of :func:`encode_ids`."""
    if kinds is None:
        return pd.Index(values)
    convert = {"int": int, "float": float, "str": str}
    out = np.empty(len(values), dtype=object)
    out[:] = [convert[k](v) for v, k in zip(values.tolist(), kinds.tolist(), strict=True)]
    return pd.Index(out, dtype=object)


def _identity_group(ratings: Ratings, name: str, config: str) -> xr.Dataset:
    ds = xr.Dataset()
    for dim, index in (("user", ratings.users), ("item", ratings.items)):
        values, kinds = encode_ids(index)
        ds = ds.assign_coords({dim: values})
        if kinds is not None:
            ds[f"{dim}_kind"] = (dim, kinds)
    ds.attrs.update({"model": name, "config": config,
                     "scale": json.dumps(ratings.scale.to_dict())})
    return ds


def _digest(h, ds: xr.Dataset, *, coords: bool = False) -> None:
    """Feed a Dataset's data variables (and, with ``coords``, its coords) to ``h``: names,
    dims, dtypes and values.  Text is hashed by value, so that it hashes the same
    whether numpy holds it as fixed-width strings or as objects (as netCDF returns it)."""
    names = sorted(map(str, ds.variables if coords else ds.data_vars))
    for name in names:
        var = ds.variables[name]
        values = np.asarray(var.values)
        h.update(f"\x1d{name}\x1f{var.dims}\x1f{values.shape}".encode())
        if values.dtype.kind in "OUS":
            h.update(b"text")
            h.update("\x1f".join(repr(v) for v in values.ravel().tolist()).encode())
        else:
            h.update(values.dtype.str.encode())
            # the buffer itself, not a ``tobytes`` copy (a BPMF posterior is hundreds of MB)
            h.update(np.ascontiguousarray(values).reshape(-1).view(np.uint8))


def model_hash(ident: xr.Dataset, observed: xr.Dataset, constant: xr.Dataset) -> str:
    """SHA-256 of what rebuilds the model: name, config, scale, ids and training data."""
    h = hashlib.sha256()
    for key in ("model", "config", "scale"):
        h.update(f"\x1e{key}={ident.attrs.get(key)}".encode())
    _digest(h, ident, coords=True)
    for ds in (observed, constant):
        _digest(h, ds)
    return h.hexdigest()


def content_hash(fit: xr.DataTree) -> str:
    """SHA-256 of the model hash and the posterior draws: what every prediction uses."""
    h = hashlib.sha256(fit[GROUP].attrs.get("model_hash", "").encode())
    _digest(h, fit["posterior"].to_dataset())
    return h.hexdigest()


def _data_groups(model: pm.Model) -> tuple[xr.Dataset, xr.Dataset]:
    """``observed_data`` and ``constant_data`` of a model, with its dims and coords."""
    out = []
    for found in (find_observations(model), find_constants(model)):
        data, coords = {}, {}
        for name, value in found.items():
            value = np.asarray(value)
            data[name] = (var_dims(model, name, value.shape, coords), value)
        out.append(xr.Dataset(data, coords=coords))
    return out[0], out[1]


def _obs_free(ds: xr.Dataset) -> xr.Dataset:
    """Without data-sized (dim ``obs``) deterministics: prediction recomputes them."""
    return ds.drop_vars([v for v in ds.data_vars if "obs" in ds[v].dims])


def write_record(groups: dict[str, xr.Dataset], model: pm.Model, method: str, options: dict,
                 seed: int, seconds: float) -> xr.DataTree:
    """The finished fit: the method's groups, the training data and the record.

    ``groups`` holds ``posterior`` and the method's own report (``sample_stats``,
    ``optimizer_result``, ``advi``).  The root ``attrs`` repeat the model's name and
    config for reading (the record in the ``bayesrec`` group is what rebuilds the
    model), with the method and its options, the seed, the run time and versions.
    """
    info = model_info(model)
    ratings = ratings_of_model(model)
    name = info.name if info is not None else "custom"
    config = info.config_json() if info is not None else "{}"
    observed, constant = _data_groups(model)
    ident = _identity_group(ratings, name, config)
    ident.attrs["model_hash"] = model_hash(ident, observed, constant)
    tree = {"posterior": _obs_free(groups["posterior"]), "observed_data": observed,
            "constant_data": constant, GROUP: ident}
    tree.update({k: v for k, v in groups.items() if k not in tree})
    out = xr.DataTree.from_dict(tree)
    out[GROUP].attrs["hash"] = content_hash(out)
    out.attrs.update({
        "bayesrec_model": name,
        "bayesrec_config": config,
        "bayesrec_hash": out[GROUP].attrs["hash"],
        "method": method,
        "method_options": json.dumps(options, sort_keys=True, default=str),
        "random_seed": int(seed),
        "fit_seconds": float(seconds),
        "created_at": now(),
        "versions": json.dumps(versions(), sort_keys=True),
    })
    return out


def rehash(fit: xr.DataTree) -> xr.DataTree:
    """``fit`` (a new tree) with its hashes recomputed after a deliberate change of its
    content (for example new users folded in)."""
    out = fit.copy()
    ident = out[GROUP].to_dataset()
    ident.attrs["model_hash"] = model_hash(ident, out["observed_data"].to_dataset(),
                                           out["constant_data"].to_dataset())
    out[GROUP].dataset = ident
    out[GROUP].attrs["hash"] = content_hash(out)
    out.attrs["bayesrec_hash"] = out[GROUP].attrs["hash"]
    return out


# ---------------------------------------------------------------------------------------------
# reading the record
# ---------------------------------------------------------------------------------------------
class FitRecord:
    """What a fit records, read back: ids, scale, training ratings, the model.

    Parameters
    ----------
    fit : DataTree
        A fit from :func:`bayesrec.inference.fit` (or :func:`~bayesrec.inference.load_fit`).
    """

    def __init__(self, fit: xr.DataTree):
        check_fit(fit)
        self.fit = fit
        self._ident = fit[GROUP].to_dataset()

    # -- what the fit is of -----------------------------------------------------------------
    @property
    def model_name(self) -> str:
        return self._ident.attrs.get("model", "custom")

    @property
    def is_custom(self) -> bool:
        return self.model_name == "custom"

    @cached_property
    def config(self) -> dict:
        return json.loads(self._ident.attrs.get("config") or "{}")

    @property
    def method(self) -> str | None:
        return self.fit.attrs.get("method")

    @property
    def random_seed(self) -> int | None:
        seed = self.fit.attrs.get("random_seed")
        return None if seed is None else int(seed)

    @cached_property
    def scale(self) -> RatingScale:
        return RatingScale.from_dict(json.loads(self._ident.attrs["scale"]))

    def _ids(self, dim: str) -> pd.Index:
        kinds = self._ident.get(f"{dim}_kind")
        return decode_ids(self._ident[dim].values, None if kinds is None else kinds.values)

    @cached_property
    def users(self) -> pd.Index:
        return self._ids("user")

    @cached_property
    def items(self) -> pd.Index:
        return self._ids("item")

    @cached_property
    def ratings(self) -> Ratings:
        """The training ratings (their id universe is the fit's)."""
        const = self.fit["constant_data"].to_dataset()
        observed = self.fit["observed_data"].to_dataset()["rating"].values
        if np.issubdtype(observed.dtype, np.integer) and self.scale.levels is not None:
            observed = self.scale.values_of(observed)  # categorical models observe level codes
        return Ratings(user=const["user_idx"].values.astype(np.int64),
                       item=const["item_idx"].values.astype(np.int64),
                       rating=np.asarray(observed, dtype=float), users=self.users,
                       items=self.items, scale=self.scale, timestamp=self._day_times(const))

    def _day_times(self, const: xr.Dataset) -> np.ndarray | None:
        """With a day context, a timestamp (midnight UTC) of each training rating's day, so
        that the rebuilt model has the same days (the record keeps days, not times)."""
        if "day_idx" not in const:
            return None
        days = np.asarray(self.fit["posterior"].to_dataset().coords["day"].values[:-1])
        stamps = pd.to_datetime(days.astype(str), utc=True).as_unit("s")
        return stamps.asi8[const["day_idx"].values.astype(np.int64)].astype(np.float64)

    # -- the model ---------------------------------------------------------------------------
    def model_key(self) -> str:
        """The model hash recomputed from the fit's content (the model cache's key)."""
        return model_hash(self._ident, self.fit["observed_data"].to_dataset(),
                          self.fit["constant_data"].to_dataset())

    def model(self, model: pm.Model | None = None) -> pm.Model:
        """``model`` if given, else the model rebuilt from the record (cached by content)."""
        if model is not None:
            if not isinstance(model, pm.Model):
                raise InputError(f"model= must be a pymc.Model, got {type(model).__name__}")
            return model
        if self.is_custom:
            raise InputError(
                "this fit is of a model that build_model did not make (a custom or edited "
                "model), so it cannot be rebuilt from the fit: pass the fitted model, for "
                "example predict(fit, ..., model=m)"
            )
        key = self.model_key()
        if key in _MODEL_CACHE:
            _MODEL_CACHE.move_to_end(key)
            return _MODEL_CACHE[key]
        built = build_model(self.model_name, self.ratings, **self.config)
        _MODEL_CACHE[key] = built
        while len(_MODEL_CACHE) > _CACHE_SIZE:
            _MODEL_CACHE.popitem(last=False)
        return built

    # -- draws --------------------------------------------------------------------------------
    def posterior(self, max_draws: int | None = None, min_draws: int = 1) -> xr.Dataset:
        """The posterior, thinned to ``max_draws`` and tiled to ``min_draws`` (see
        :func:`thin_posterior`)."""
        return thin_posterior(self.fit["posterior"].to_dataset(), max_draws, min_draws)

    @property
    def is_point(self) -> bool:
        """A point estimate (MAP: one draw per chain)."""
        return self.fit["posterior"].sizes.get("draw", 0) == 1

    def default_seed(self, purpose: str) -> int:
        """A seed derived from the fit's own seed and ``purpose``, so that repeated calls
        (say, two predictions) agree without the caller choosing a seed."""
        entropy = [self.random_seed or 0, int.from_bytes(purpose.encode()[:8], "little")]
        return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def ratings_from_fit(fit: xr.DataTree) -> Ratings:
    """The training ratings a fit was made from (its ``constant_data``/``observed_data``)."""
    return FitRecord(fit).ratings


def model_from_fit(fit: xr.DataTree, model: pm.Model | None = None) -> pm.Model:
    """The PyMC model a fit came from: ``model`` if given, else rebuilt (and cached)."""
    return FitRecord(fit).model(model)
