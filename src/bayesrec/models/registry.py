"""The model registry: names -> factories (or baseline classes) with metadata.

The CLI, the documentation's model table, the demo and the contract tests all read
this registry; adding a model is one ``@register(...)`` decorator.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import pymc as pm

from bayesrec.data.ratings import Ratings
from bayesrec.errors import InputError

__all__ = [
    "ModelSpec",
    "ModelInfo",
    "register",
    "get_spec",
    "list_models",
    "build_model",
    "make_recommender",
    "model_info",
]

BAYESIAN_METHODS = ("map", "nuts", "advi", "fullrank_advi", "minibatch_advi")


@dataclass(frozen=True)
class ModelSpec:
    """Metadata about one registered model.

    Attributes
    ----------
    name : str
        Registry name (``"pmf"``, ``"global_mean"``, ...).
    kind : {"bayesian", "baseline"}
        A Bayesian model's ``build`` is a factory ``(ratings, **options) -> pm.Model``;
        a baseline's is a :class:`~bayesrec.models.base.Recommender` class.
    title, reference, summary : str
        Human-readable description and the paper it comes from.
    predicts : {"gaussian", "categorical", "point"}
        What the model's predictive distribution is over ratings.
    methods : tuple of str
        Inference methods that apply (``("fit",)`` for baselines).
    default_method : str
    fast : dict
        Settings for demos and contract tests: ``{"options": {...}, "fit": {method:
        {...}}, "method": ...}`` (model options, fit options per inference method, and
        the method the demo uses).
    fit_defaults : dict
        The model's own default fit options per method (``{"map": {"restarts": 8}}``),
        applied by :func:`make_recommender` under the fast settings and the caller's.
    method_options : dict
        Recommended model options per inference method (``{"map": {"priors": {...}}}``),
        for example the stronger shrinkage a point estimate needs; applied by
        :func:`make_recommender` under the fast settings and the caller's options.
    """

    name: str
    kind: Literal["bayesian", "baseline"]
    build: Callable[..., Any]
    title: str
    reference: str = ""
    summary: str = ""
    predicts: Literal["gaussian", "categorical", "point"] = "gaussian"
    methods: tuple[str, ...] = BAYESIAN_METHODS
    default_method: str = "map"
    fast: dict = field(default_factory=dict)
    fit_defaults: dict = field(default_factory=dict)
    method_options: dict = field(default_factory=dict)

    def resolve(self, method: str | None = None, *, options: dict | None = None,
                fit_options: dict | None = None, fast: bool = False) -> tuple[str, dict, dict]:
        """The method, model options and fit options a recommender will use.

        Precedence, lowest first: the factory's defaults (not listed here), the
        model's recommended options for the method, the fast settings (when
        ``fast``), the caller's.
        """
        method = self.resolve_method(method, fast=fast)
        fast_spec = self.fast if fast else {}
        options = {**self.method_options.get(method, {}), **fast_spec.get("options", {}),
                   **(options or {})}
        fit_options = {**self.fit_defaults.get(method, {}),
                       **fast_spec.get("fit", {}).get(method, {}), **(fit_options or {})}
        return method, options, fit_options

    def resolve_method(self, method: str | None = None, *, fast: bool = False) -> str:
        """``method``, else the fast-mode method (when ``fast``), else the default."""
        return method or (self.fast.get("method") if fast else None) or self.default_method

    def options(self) -> dict[str, Any]:
        """The factory's (or class's) keyword options with their defaults."""
        sig = inspect.signature(self.build)
        return {
            k: p.default
            for k, p in sig.parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is not inspect.Parameter.empty
        }


_REGISTRY: dict[str, ModelSpec] = {}


def register(name: str, *, kind: Literal["bayesian", "baseline"] = "bayesian", title: str,
             reference: str = "", summary: str = "", predicts="gaussian",
             methods: tuple[str, ...] | None = None, default_method: str | None = None,
             fast: dict | None = None, fit_defaults: dict | None = None,
             method_options: dict | None = None):
    """Class/function decorator adding a model to the registry under ``name``."""

    def decorate(obj):
        if name in _REGISTRY and _REGISTRY[name].build is not obj:
            raise ValueError(f"a model named {name!r} is already registered")
        ms = methods or (BAYESIAN_METHODS if kind == "bayesian" else ("fit",))
        _REGISTRY[name] = ModelSpec(
            name=name, kind=kind, build=obj, title=title, reference=reference,
            summary=summary or (inspect.getdoc(obj) or "").split("\n")[0], predicts=predicts,
            methods=ms, default_method=default_method or ms[0], fast=fast or {},
            fit_defaults=fit_defaults or {}, method_options=method_options or {},
        )
        return obj

    return decorate


def _load_all() -> None:
    # importing the package registers every built-in model
    import bayesrec.models  # noqa: F401


def list_models(kind: str | None = None) -> list[ModelSpec]:
    """Registered models (optionally only ``"bayesian"`` or ``"baseline"``), by name."""
    _load_all()
    return [s for _, s in sorted(_REGISTRY.items()) if kind is None or s.kind == kind]


def get_spec(name: str) -> ModelSpec:
    """The spec of a registered model; an unknown name raises listing the valid ones."""
    _load_all()
    if not isinstance(name, str) or name not in _REGISTRY:
        raise InputError(
            f"unknown model {name!r}; registered models are: {', '.join(sorted(_REGISTRY))}"
        )
    return _REGISTRY[name]


def _check_options(spec: ModelSpec, options: dict[str, Any]) -> dict[str, Any]:
    valid = spec.options()
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise InputError(
            f"unknown option(s) {unknown} for model {spec.name!r}; valid options are: "
            f"{', '.join(sorted(valid)) or '(none)'}"
        )
    return {**valid, **options}


@dataclass(frozen=True)
class ModelInfo:
    """What :func:`build_model` attaches to a model: registry name, full config, data."""

    name: str
    config: dict[str, Any]
    ratings: Ratings

    def config_json(self) -> str:
        return json.dumps(self.config, sort_keys=True, default=_json_default)


def _json_default(x):
    try:
        import numpy as np

        if isinstance(x, np.generic):
            return x.item()
        if isinstance(x, np.ndarray):
            return x.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(x, tuple):
        return list(x)
    raise TypeError(f"option value {x!r} is not JSON-serialisable")


def build_model(name: str, ratings: Ratings, **options) -> pm.Model:
    """Build the registered Bayesian model ``name`` on ``ratings``.

    Options are checked against the factory's signature (an unknown option raises
    listing the valid ones) and recorded, with the defaults filled in, on the
    returned model, so that a fit can say which model and config produced it and
    rebuild the model later.  A factory that derives an option from the data (for
    example MPMA's clusters) records the derived value as the dict attribute
    ``bayesrec_derived_options`` of its model; it replaces the option in the config,
    so that rebuilding uses it rather than deriving it again.
    """
    spec = get_spec(name)
    if spec.kind != "bayesian":
        raise InputError(f"{name!r} is a baseline, not a PyMC model; use make_recommender()")
    if not isinstance(ratings, Ratings):
        raise InputError(f"a model needs a bayesrec.Ratings, got {type(ratings).__name__}")
    config = _check_options(spec, options)
    model = spec.build(ratings, **options)
    config.update(getattr(model, "bayesrec_derived_options", None) or {})
    model.bayesrec_info = ModelInfo(name=name, config=config, ratings=ratings)
    return model


def model_info(model: pm.Model) -> ModelInfo | None:
    """The :class:`ModelInfo` of a model built by :func:`build_model` (else None)."""
    return getattr(model, "bayesrec_info", None)


def make_recommender(name: str, method: str | None = None, *, options: dict | None = None,
                     fit_options: dict | None = None, fast: bool = False,
                     random_seed: int | None = None):
    """A fit/predict :class:`~bayesrec.models.base.Recommender` for any registered model.

    Parameters
    ----------
    name : str
        Registry name.
    method : str, optional
        Inference method for Bayesian models (default: the model's default);
        baselines accept only ``None`` or ``"fit"``.
    options : dict
        Model options (factory keywords, or baseline constructor keywords).
    fit_options : dict
        Options for :func:`bayesrec.inference.fit` (draws, tune, chains, ...).
    fast : bool
        Start from the model's fast settings (demo, tests): its ``fast["options"]``, the
        fit options ``fast["fit"][method]`` and, when ``method`` is None, the method
        ``fast["method"]``.
    random_seed : int, optional
    """
    spec = get_spec(name)
    method, options, fit_options = spec.resolve(method, options=options,
                                                fit_options=fit_options, fast=fast)
    if method not in spec.methods:
        raise InputError(
            f"unknown method {method!r} for model {name!r}; valid methods are: "
            f"{', '.join(spec.methods)}"
        )
    if spec.kind == "baseline":
        _check_options(spec, options)
        kwargs = dict(options)
        if "random_seed" in inspect.signature(spec.build).parameters:
            kwargs["random_seed"] = random_seed
        return spec.build(**kwargs)
    from bayesrec.inference.recommender import BayesianRecommender

    _check_options(spec, options)
    return BayesianRecommender(name, method=method, options=options, fit_options=fit_options,
                               random_seed=random_seed)
