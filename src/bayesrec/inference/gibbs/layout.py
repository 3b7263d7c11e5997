"""What the Gibbs steps need to know about a factor model, read once from the model.

The model says which of its variables play which role by declaring a
:class:`~bayesrec.models.hooks.FactorStructure` in its spec (PMF and BPMF do);
the prior settings are read from its graph.  Nothing here knows a model by name.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import pymc as pm
import scipy.sparse as sp
from pytensor.tensor.basic import get_underlying_scalar_constant_value
from pytensor.tensor.exceptions import NotScalarConstantError

from bayesrec.errors import InputError
from bayesrec.inference.gibbs.kernels import SdPrior, csr_by
from bayesrec.models.hooks import FactorStructure
from bayesrec.models.registry import get_spec, list_models, model_info

__all__ = ["GIBBS_LIKELIHOODS", "FactorLayout", "factor_structure_of", "layout_of", "read_priors", "supporting_models"]


@functools.lru_cache(maxsize=16)
def triangle(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows and columns of the packed lower triangle (PyMC's order), and its diagonal mask."""
    rows, cols = np.tril_indices(k)
    return rows, cols, rows == cols


@dataclass(frozen=True)
class _Side:
    """One side (users or items): its point keys and its ratings grouped by row (CSR)."""

    name: str  # "user" or "item"
    factors: str  # point key of the sampled factors (``user_factors`` or ``user_factors_std``)
    bias: str | None  # point key of the bias, or None
    indptr: np.ndarray
    other: np.ndarray  # other-side row of each rating, grouped by this side's row
    rating: np.ndarray  # ordinal likelihoods: the latent ratings, rewritten every sweep
    order: np.ndarray  # rating j of this grouping is rating order[j] in observation order

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1


@dataclass(frozen=True)
class Scale:
    """The prior sd of a block ``N(0, sd^2)``: a fixed ``value``, or learned (BPMF): the
    point key ``key`` of its log and its Gamma ``prior``."""

    value: float | None = None
    key: str | None = None
    prior: SdPrior | None = None

    def of(self, point: dict) -> float:
        """The sd at ``point``."""
        return self.value if self.key is None else float(np.exp(point[self.key]))


@dataclass(frozen=True)
class _Implicit:
    """A side's implicit-feedback sum ``S = M y``: ``M`` (rows x other rows) has
    ``|N(r)|^{-1/2}`` at each training pair (``N(r)`` the other-side rows ``r`` rated), ``y``
    the other side's implicit factors (point key ``key``, prior ``N(0, sd^2)``)."""

    key: str  # ``item_implicit`` for the user side's sum, ``user_implicit`` for the item side's
    weight: np.ndarray  # |N(r)|^{-1/2} of each row (1 for rows without ratings: a zero sum)
    matrix: sp.csr_matrix
    sd: Scale


@dataclass(frozen=True)
class _Context:
    """The day of each rating as a context (``context="day"``): ``e_d + (U_u + V_i) . D_d``.

    ``code`` is each training rating's day (observation order), ``indptr``/``order`` the
    ratings grouped by day (CSR; the last day, ``"unseen"``, has none), ``side_code`` the
    day of each rating in each side's grouping.  Priors ``D_d ~ N(0, factor_sd^2 I)`` and
    ``e_d ~ N(0, bias_sd^2)`` (fixed sds in PMF, learned in BPMF).
    """

    factors: str  # point key of ``day_factors``
    bias: str | None  # point key of ``day_bias``, or None (a model without biases)
    code: np.ndarray
    indptr: np.ndarray
    order: np.ndarray
    side_code: dict
    factor_sd: Scale
    bias_sd: Scale | None

    @property
    def n_days(self) -> int:
        return len(self.indptr) - 1


@dataclass(frozen=True)
class FactorLayout:
    """The structure of a factor model that the Gibbs steps rely on.

    Read by :func:`layout_of` from the model's declared
    :class:`~bayesrec.models.hooks.FactorStructure`, its training ratings and, for the
    prior settings, its graph (:func:`read_priors`); it raises :class:`InputError` for
    models that declare none.  The tests check the resulting conditionals against the
    model's log-density.  Points are PyMC points (value-variable names, transformed
    values: ``log`` of ``sigma`` and ``bias_sd``, packed Cholesky with a log diagonal).
    ``hierarchical``: factor rows ``N(mean, L L^T)`` with learned ``mean`` and ``L``
    (else a fixed ``N(0, s^2 I)``); ``learned_bias_sd``: biases with a learned sd.

    ``likelihood="ordered_probit"``: the ratings are level codes (``level_code``) and
    ``rating`` (and each side's ``rating``) holds the latent ratings ``z`` of the data
    augmentation, which :class:`~bayesrec.inference.gibbs.ordinal.OrdinalProbit` draws
    at the start of every sweep (:meth:`set_latent`); the noise sd is 1 and there is no
    offset (``has_offset`` False).
    """

    hierarchical: bool
    learned_bias_sd: bool
    n_factors: int
    biases: bool
    centred: bool
    noise: float | None  # fixed noise sd, or None when learned
    priors: dict
    offset_centre: float
    user: _Side
    item: _Side
    user_code: np.ndarray  # ratings in observation order
    item_code: np.ndarray
    rating: np.ndarray
    value_names: dict  # RV name -> value-variable name (transformed names)
    likelihood: str = "gaussian"
    level_code: np.ndarray | None = None  # ordinal: level code of each rating (obs order)
    #: side -> its feature matrix (rows, features), for the sides with feature priors
    features: dict = field(default_factory=dict)
    #: side -> its implicit-feedback sum (:class:`_Implicit`), for the sides that have one
    implicit: dict = field(default_factory=dict)
    #: the day of each rating as a context (:class:`_Context`), or None
    context: _Context | None = None
    # the last log-likelihood a step computed, and the point entries it was computed from
    loglik_memo: dict = field(default_factory=dict, compare=False, repr=False)

    def likelihood_keys(self) -> tuple[str, ...]:
        """The point entries the likelihood depends on."""
        keys = [self.user.factors, self.item.factors]
        if self.biases:
            keys += [self.user.bias, self.item.bias]
        if self.has_offset:
            keys.append("offset")
        if self.ordinal:
            keys.append(self.value_names["cutpoints"])
        if self.noise is None:
            keys.append(self.value_names["sigma"])
        if not self.centred and self.hierarchical:
            keys += [f"{s}_factor_mean" for s in ("user", "item")]
            keys += [self.value_names[f"{s}_factor_chol"] for s in ("user", "item")]
        keys += [imp.key for imp in self.implicit.values()]
        keys += self.learned_scales
        if self.context is not None:
            keys += [k for k in (self.context.factors, self.context.bias) if k is not None]
        return tuple(keys)

    @property
    def learned_scales(self) -> list[str]:
        """Point keys of the learned sds of the implicit factors and the days."""
        scales = [imp.sd for imp in self.implicit.values()]
        if self.context is not None:
            scales += [self.context.factor_sd, self.context.bias_sd]
        return [sc.key for sc in scales if sc is not None and sc.key is not None]

    @property
    def ordinal(self) -> bool:
        """Ratings as ordered levels (the latent ``rating`` is augmented data)."""
        return self.likelihood != "gaussian"

    @property
    def has_offset(self) -> bool:
        return self.biases and not self.ordinal

    def set_latent(self, latent: np.ndarray) -> None:
        """Store the latent ratings (observation order) in ``rating`` and in each side's
        grouping (in place: the arrays the kernels read)."""
        self.rating[:] = latent
        for s in (self.user, self.item):
            s.rating[:] = latent[s.order]

    def cutpoints(self, point: dict) -> np.ndarray:
        """The ordered cutpoints at ``point`` (PyMC's value: first, then log increments)."""
        value = np.asarray(point[self.value_names["cutpoints"]], dtype=float)
        return np.concatenate([value[:1], value[0] + np.cumsum(np.exp(value[1:]))])

    @staticmethod
    def cutpoint_value(cutpoints: np.ndarray) -> np.ndarray:
        """PyMC's ordered-transform value of increasing ``cutpoints``."""
        return np.concatenate([cutpoints[:1], np.log(np.diff(cutpoints))])

    def remember_log_likelihood(self, point: dict, loglik: float) -> None:
        """Note ``loglik`` as the log-likelihood of ``point``'s current entries."""
        self.loglik_memo["entries"] = [point[k] for k in self.likelihood_keys()]
        self.loglik_memo["value"] = float(loglik)

    def remembered_log_likelihood(self, point: dict) -> float | None:
        """The noted log-likelihood if ``point`` holds the very same arrays, else None.

        The steps never change an array in place (each update stores a new one), so
        the same objects mean the same values; the memo holds them, so their ids
        cannot be reused.
        """
        entries = self.loglik_memo.get("entries")
        if entries is None:
            return None
        same = all(point.get(k) is v for k, v in zip(self.likelihood_keys(), entries,
                                                      strict=True))
        return self.loglik_memo["value"] if same else None

    def side(self, name: str) -> _Side:
        return self.user if name == "user" else self.item

    def side_prior(self, point: dict, side: str) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, L)`` of the side's factor prior ``N(mean, L L^T)`` at ``point``."""
        k = self.n_factors
        if not self.hierarchical:
            return np.zeros(k), np.eye(k) * self.priors[f"{side}_factor_sd"]
        mean = np.asarray(point[f"{side}_factor_mean"], dtype=float)
        packed = np.array(point[self.value_names[f"{side}_factor_chol"]], dtype=float)
        rows, cols, diag = triangle(k)
        packed[diag] = np.exp(packed[diag])  # CholeskyCovPacked: log of the diagonal
        chol = np.zeros((k, k))
        chol[rows, cols] = packed
        return mean, chol

    def packed_chol(self, chol: np.ndarray) -> np.ndarray:
        """PyMC's value of a Cholesky factor: packed lower triangle, log of the diagonal."""
        rows, cols, diag = triangle(self.n_factors)
        packed = chol[rows, cols].copy()
        packed[diag] = np.log(packed[diag])
        return packed

    def scaled_chol(self, point: dict, side: str, factor: np.ndarray) -> np.ndarray:
        """The packed value of ``diag(factor) L`` (PyMC's value space: log of the diagonal)."""
        packed = np.array(point[self.value_names[f"{side}_factor_chol"]], dtype=float)
        rows, _, diag = triangle(self.n_factors)
        packed[diag] += np.log(factor)
        packed[~diag] *= factor[rows[~diag]]
        return packed

    def point_from_draw(self, draw: dict) -> dict:
        """A point (value space) from one stored posterior draw (constrained, by RV name).

        The inverse of the transforms the accessors undo: ``log`` of ``sigma`` and
        ``bias_sd``, the packed Cholesky factor with a log diagonal.  Names that are
        not free variables (deterministics) are left out.
        """
        point = {}
        for name, value in draw.items():
            key = self.value_names.get(name)
            if key is None:
                continue
            value = np.array(value, dtype=float)
            if key.endswith("_log__"):
                value = np.log(value)
            elif key.endswith("_cholesky-cov-packed__"):
                diag = triangle(self.n_factors)[2]
                value[diag] = np.log(value[diag])
            elif key.endswith("_ordered__"):
                value = self.cutpoint_value(value)
            elif key != name:
                raise InputError(f"unexpected transform {key!r} of {name}: the factory changed; "
                                 "update bayesrec.inference.gibbs.layout")
            point[key] = value
        return point

    def factors_of(self, point: dict, side: str) -> np.ndarray:
        """The side's factors at ``point`` (``U = mu + z L^T`` when non-centred)."""
        factors = np.asarray(point[self.side(side).factors], dtype=float)
        if not self.centred:
            mean, chol = self.side_prior(point, side)
            factors = mean + factors @ chol.T
        return factors

    def implicit_sum(self, point: dict, side: str) -> np.ndarray | None:
        """``|N(r)|^{-1/2} sum_{j in N(r)} y_j`` (rows, factor), the side's implicit-feedback
        sum at ``point``, or None when the side has none."""
        imp = self.implicit.get(side)
        if imp is None:
            return None
        return np.asarray(imp.matrix @ np.asarray(point[imp.key], dtype=float))

    def effective_factors(self, point: dict, side: str) -> np.ndarray:
        """The side's factors as the likelihood reads them: ``factors_of`` plus the implicit
        sum, when the side has one."""
        factors = self.factors_of(point, side)
        extra = self.implicit_sum(point, side)
        return factors if extra is None else factors + extra

    def day_values(self, point: dict) -> tuple[np.ndarray, np.ndarray]:
        """``(D, e)``: the days' factors (days, factor) and biases (zeros without biases)."""
        ctx = self.context
        factors = np.asarray(point[ctx.factors], dtype=float)
        bias = (np.asarray(point[ctx.bias], dtype=float) if ctx.bias is not None
                else np.zeros(ctx.n_days))
        return factors, bias

    def rating_rows(self, point: dict, side: str, feats: np.ndarray,
                    base: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(other, feats, base)`` for the side's rows: the index of each rating's "other
        row" (in the side's grouping), the rows that multiply this side's (effective)
        factors and what the rest of the mean adds, from the other side's ``feats`` and
        ``base``, one row each.  Without a day context they are returned as given (``other``
        indexes them); with one, each rating gets its own row ``Z_o + D_d`` and base
        ``base_o + e_d + Z_o . D_d`` (``other`` is then the rating's position)."""
        other = self.side(side).other
        if self.context is None:
            return other, feats, base
        factors, bias = self.day_values(point)
        day = self.context.side_code[side]
        rows = factors[day]
        feats = feats[other]
        return (np.arange(len(other), dtype=np.int64), feats + rows,
                base[other] + bias[day] + np.einsum("rk,rk->r", feats, rows))

    def day_term(self, point: dict) -> np.ndarray | None:
        """``e_d + (W_u + Z_i) . D_d`` of every training rating (observation order), with the
        effective factors ``W``, ``Z``; None without a day context."""
        if self.context is None:
            return None
        factors, bias = self.day_values(point)
        day = self.context.code
        both = (self.effective_factors(point, "user")[self.user_code]
                + self.effective_factors(point, "item")[self.item_code])
        return bias[day] + np.einsum("rk,rk->r", both, factors[day])

    def bias_of(self, point: dict, side: str) -> np.ndarray:
        s = self.side(side)
        return np.asarray(point[s.bias], dtype=float) if self.biases else np.zeros(s.n_rows)

    def feature_mean(self, point: dict, side: str) -> np.ndarray | None:
        """``X B`` (rows, factor), the feature part of the side's factor prior mean, or
        None without features (``B = {side}_feature_sd * {side}_feature_coef_std``)."""
        x = self.features.get(side)
        if x is None:
            return None
        sd = float(np.exp(point[self.value_names[f"{side}_feature_sd"]]))
        return x @ (sd * np.asarray(point[f"{side}_feature_coef_std"], dtype=float))

    def bias_feature_mean(self, point: dict, side: str) -> np.ndarray | None:
        """``X beta`` (rows,), the feature part of the side's bias prior mean, or None."""
        x = self.features.get(side)
        if x is None or not self.biases:
            return None
        sd = float(np.exp(point[self.value_names[f"{side}_bias_feature_sd"]]))
        return x @ (sd * np.asarray(point[f"{side}_bias_feature_coef_std"], dtype=float))

    def offset(self, point: dict) -> float:
        return float(point["offset"]) if self.has_offset else 0.0

    def bias_sd(self, point: dict) -> float:
        if not self.learned_bias_sd:
            return float(self.priors["bias_sd"])
        return float(np.exp(point[self.value_names["bias_sd"]]))

    def sigma(self, point: dict) -> float:
        if self.noise is not None:
            return self.noise
        return float(np.exp(point[self.value_names["sigma"]]))


def _constant(x) -> np.ndarray:
    """The value of a distribution parameter that depends on no random variable."""
    try:
        return np.asarray(get_underlying_scalar_constant_value(x), dtype=float)
    except NotScalarConstantError:
        return np.asarray(x.eval(), dtype=float)


def _prior(model: pm.Model, name: str, family: str, params: slice = slice(None)) -> list[float]:
    """The (constant, scalar) parameters of ``model[name]``'s prior, checking its family
    (those in ``params``: ``slice(1, None)`` skips a mean that depends on other variables)."""
    rv = model[name]
    op = rv.owner.op
    if family not in {cls.__name__ for cls in type(op).__mro__}:  # subclasses count
        raise InputError(f"the gibbs method expects {name} ~ {family[:-2]}, found "
                         f"{type(op).__name__[:-2]}: the factory changed; update "
                         "bayesrec.inference.gibbs.layout")
    values = [_constant(v) for v in op.dist_params(rv.owner)[params]]
    if any(np.ptp(v) > 0 for v in values if v.size > 1):
        raise InputError(f"the gibbs method expects one prior scale for all of {name}")
    return [float(v.ravel()[0]) for v in values]


def _lkj_prior(model: pm.Model, name: str) -> tuple[float, SdPrior]:
    """``(eta, sd prior)`` of an ``LKJCholeskyCov`` variable."""
    rv = model[name]
    eta = float(_constant(rv.owner.inputs[2]))
    sd_dist = rv.owner.inputs[3]
    kind = type(sd_dist.owner.op).__name__
    params = [float(_constant(v).ravel()[0]) for v in sd_dist.owner.op.dist_params(sd_dist.owner)]
    if kind == "HalfNormalRV":
        return eta, SdPrior("halfnormal", params[1])
    if kind == "GammaRV":  # PyTensor's gamma takes (shape, scale)
        return eta, SdPrior("gamma", params[0], params[1])
    raise InputError(f"the gibbs method supports HalfNormal or Gamma sds in {name}, not {kind}")


def read_priors(model: pm.Model, structure: FactorStructure) -> dict:
    """The prior settings the conditionals need, read from the model's own graph.

    Reading them from the graph (rather than from the factory's defaults) keeps the
    sampler in step with the factory; a family it does not expect raises.
    """
    priors = {}
    if structure.noise is None:
        priors["noise_sd"] = _prior(model, "sigma", "HalfNormalRV")[1]
    if structure.biases and structure.likelihood == "gaussian":
        priors["offset_centre"], priors["offset_sd"] = _prior(model, "offset", "NormalRV")
    if structure.likelihood != "gaussian":
        rv = model["cutpoints"]
        if "NormalRV" not in {cls.__name__ for cls in type(rv.owner.op).__mro__}:
            raise InputError("the gibbs method expects cutpoints ~ Normal: the factory changed; "
                             "update bayesrec.inference.gibbs.layout")
        mean, sd = (_constant(v) for v in rv.owner.op.dist_params(rv.owner))
        n_cut = len(model.coords["cutpoint"])
        priors["cutpoint_mean"] = np.broadcast_to(mean, (n_cut,)).astype(float)
        priors["cutpoint_sd"] = np.broadcast_to(sd, (n_cut,)).astype(float)
    for side in ("user", "item"):
        featured = side in structure.features
        if structure.factor_prior == "fixed" and featured:  # the mean is X B
            priors[f"{side}_factor_sd"] = _prior(model, f"{side}_factors", "NormalRV",
                                                 params=slice(1, None))[0]
        elif structure.factor_prior == "fixed":
            mean, priors[f"{side}_factor_sd"] = _prior(model, f"{side}_factors", "NormalRV")
            if mean != 0:
                raise InputError(f"the gibbs method expects a zero prior mean for {side}_factors")
        else:
            priors[f"{side}_mean_sd"] = _prior(model, f"{side}_factor_mean", "NormalRV")[1]
            priors[f"{side}_lkj_eta"], priors[f"{side}_sd_prior"] = _lkj_prior(
                model, f"{side}_factor_chol")
        if featured:  # Gamma(shape, scale) scales of the coefficients, N(0, 1) coefficients
            for part in ("", "bias_") if structure.biases else ("",):
                name = f"{side}_{part}feature"
                priors[f"{name}_sd_prior"] = SdPrior("gamma", *_prior(model, f"{name}_sd",
                                                                      "GammaRV"))
                if _prior(model, f"{name}_coef_std", "NormalRV") != [0.0, 1.0]:
                    raise InputError(f"the gibbs method expects {name}_coef_std ~ N(0, 1)")
    if structure.biases and not structure.learned_bias_sd:
        sds = {_prior(model, f"{side}_bias", "NormalRV", params=slice(1, None))[0]
               for side in ("user", "item")}
        if len(sds) > 1:
            raise InputError("the gibbs method expects one prior sd for user and item biases")
        priors["bias_sd"] = sds.pop()
    elif structure.biases:
        priors["bias_sd_scale"] = _prior(model, "bias_sd", "HalfNormalRV")[1]
    return priors


def supporting_models() -> list[str]:
    """Registered models that declare a factor structure (for messages)."""
    return [s.name for s in list_models(kind="bayesian") if s.factor_structure is not None]


#: the likelihoods the Gibbs sampler handles (ordered logit has no Gaussian augmentation)
GIBBS_LIKELIHOODS = ("gaussian", "ordered_probit")


def factor_structure_of(name: str, config: dict, what: str,
                        likelihoods: tuple[str, ...] = ("gaussian",)) -> FactorStructure:
    """The factor structure the spec of model ``name`` declares for ``config``; models
    without one raise, naming those that have one; so does a likelihood not in
    ``likelihoods``."""
    spec = get_spec(name) if name != "custom" else None
    if spec is None or spec.factor_structure is None:
        shown = repr(name) if name != "custom" else "a model build_model did not make"
        raise InputError(
            f"{what} needs a model whose spec declares a factor structure (the registered "
            f"{', '.join(supporting_models())}, built with bayesrec.models.build_model), not "
            f"{shown}; use method='nuts' or predict(..., unknown='population')"
        )
    structure = spec.factor_structure(config)
    if structure.unsupported:
        raise InputError(f"{what} does not support {structure.unsupported} yet; use map, "
                         "nuts or advi")
    if structure.link != "identity":
        raise InputError(f"{what} needs link='identity' (with the logistic link the factor "
                         "rows have no Gaussian conditional); use method='nuts'")
    if structure.likelihood not in likelihoods:
        why = ("the logistic latent noise has no Gaussian data augmentation"
               if structure.likelihood == "ordered_logit" else "it needs Gaussian ratings")
        raise InputError(
            f"{what} does not support likelihood={structure.likelihood!r} ({why}; it handles "
            f"{', '.join(repr(x) for x in likelihoods)}); use method='nuts', 'advi' or 'map'"
            + (", or likelihood='ordered_probit' for Gibbs"
               if structure.likelihood == "ordered_logit" and "ordered_probit" in likelihoods
               else ""))
    return structure


def layout_of(model: pm.Model, *, what: str = "the gibbs method",
              likelihoods: tuple[str, ...] = GIBBS_LIKELIHOODS) -> FactorLayout:
    """The :class:`FactorLayout` of a model whose spec declares a factor structure.

    With an ordinal likelihood the layout's ratings are the latent ratings, zero until
    the first sweep draws them.
    """
    info = model_info(model)
    structure = factor_structure_of(info.name if info else "custom",
                                    info.config if info else {}, what, likelihoods)
    ratings = info.ratings
    suffix = "" if structure.centred else "_std"
    priors = read_priors(model, structure)
    user, item = ratings.user.astype(np.int64), ratings.item.astype(np.int64)
    ordinal = structure.likelihood != "gaussian"
    rating = (np.zeros(ratings.n_ratings) if ordinal
              else np.asarray(ratings.rating, dtype=np.float64))
    if len(model["user_idx"].get_value()) != len(rating):
        raise InputError("the model's user_idx no longer matches its training ratings "
                         "(was pm.set_data left applied?)")
    sides = {}
    for name, rows, other, n in (("user", user, item, ratings.n_users),
                                 ("item", item, user, ratings.n_items)):
        indptr, other_sorted, rating_sorted, order = csr_by(rows, n, other, rating,
                                                            np.arange(len(rating)))
        sides[name] = _Side(name, f"{name}_factors{suffix}",
                            f"{name}_bias" if structure.biases else None,
                            indptr, other_sorted, rating_sorted, order)
    return FactorLayout(
        hierarchical=structure.factor_prior == "hierarchical",
        learned_bias_sd=structure.learned_bias_sd, n_factors=structure.n_factors,
        biases=structure.biases, centred=structure.centred, noise=structure.noise,
        priors=priors, offset_centre=priors.get("offset_centre", 0.0), user=sides["user"],
        item=sides["item"], user_code=user, item_code=item, rating=rating,
        value_names={rv.name: model.rvs_to_values[rv].name for rv in model.free_RVs},
        likelihood=structure.likelihood,
        level_code=np.asarray(ratings.level_codes, dtype=np.int64) if ordinal else None,
        features={side: np.asarray(model[f"{side}_features"].get_value(), dtype=np.float64)
                  for side in structure.features},
        implicit={side: _implicit_of(model, sides[side], "item" if side == "user" else "user",
                                     sides["item" if side == "user" else "user"].n_rows)
                  for side in structure.implicit},
        context=_context_of(model, sides, structure.biases) if structure.context else None,
    )


def _scale_of(model: pm.Model, name: str, sd_name: str) -> Scale:
    """The prior sd of ``name ~ N(0, sd^2)``: learned when the model has ``sd_name`` (a
    Gamma), else fixed."""
    if sd_name in model.named_vars:
        mean = _prior(model, name, "NormalRV", params=slice(0, 1))[0]
        scale = Scale(key=model.rvs_to_values[model[sd_name]].name,
                      prior=SdPrior("gamma", *_prior(model, sd_name, "GammaRV")))
    else:
        mean, sd = _prior(model, name, "NormalRV")
        scale = Scale(value=sd)
    if mean != 0:
        raise InputError(f"the gibbs method expects a zero prior mean for {name}")
    return scale


def _implicit_of(model: pm.Model, side: _Side, other: str, n_other: int) -> _Implicit:
    """The side's implicit sum over its training pairs (the sets ``N(r)`` the factory used:
    every rating of row ``r``, repeats counted, as its scatter-add does)."""
    counts = np.diff(side.indptr)
    weight = 1.0 / np.sqrt(np.maximum(counts, 1))
    matrix = sp.csr_matrix((np.repeat(weight, counts), side.other, side.indptr),
                           shape=(side.n_rows, n_other))
    name = f"{other}_implicit"
    if model[name] not in model.free_RVs:
        raise InputError("the gibbs method samples a non-centred model with implicit terms "
                         "through its centred twin: use fit(model, 'gibbs') "
                         "(bayesrec.inference.gibbs.run)")
    sd = _scale_of(model, name, f"{other}_implicit_sd")
    key = model.rvs_to_values[model[name]].name
    return _Implicit(key, weight, matrix, sd)


def _context_of(model: pm.Model, sides: dict, biases: bool) -> _Context:
    """The day context of a model: the training ratings' days and the days' priors."""
    code = np.asarray(model["day_idx"].get_value(), dtype=np.int64)
    n_days = len(model.coords["day"])
    indptr, order = csr_by(code, n_days, np.arange(len(code)))
    factor_sd = _scale_of(model, "day_factors", "day_factor_sd")
    bias_sd = _scale_of(model, "day_bias", "day_bias_sd") if biases else None
    name = model.rvs_to_values
    return _Context(name[model["day_factors"]].name,
                    name[model["day_bias"]].name if biases else None, code, indptr, order,
                    {side: code[s.order] for side, s in sides.items()}, factor_sd, bias_sd)
