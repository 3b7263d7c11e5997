"""The model registry: each model's one source of truth.

A :class:`ModelSpec` holds everything bayesrec knows about a model: its factory (or
baseline class), description, the inference methods that apply, its defaults
(the factory's keyword defaults and default priors, its own settings per
inference method, named presets of model options, fast settings for demos and
tests) and the hooks inference may look up (an EM step, a factor structure for
the Gibbs sampler).  Every entry point reads the spec: :func:`build_model`,
:func:`bayesrec.inference.fit` (which applies ``fit_defaults``),
:func:`bayesrec.recommenders.make_recommender`, the CLI, the README's model table
and the contract tests.  Adding a model is one module with its factory and a
``@register(...)`` decorator, imported in :mod:`bayesrec.models`.

No setting here changes a model according to the inference method: model options
are the factory's (or a preset's the user names), and ``fit_defaults`` are
options of the method only.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pymc as pm

from bayesrec.data.ratings import Ratings
from bayesrec.errors import InputError
from bayesrec.models.hooks import EMStep, FactorStructureOf, StagedFit

__all__ = [
    "BAYESIAN_METHODS",
    "FastSettings",
    "ModelInfo",
    "ModelSpec",
    "build_model",
    "get_spec",
    "list_models",
    "model_info",
    "model_table",
    "register",
    "spec_of",
]

BAYESIAN_METHODS = ("map", "nuts", "advi", "fullrank_advi", "minibatch_advi")


@dataclass(frozen=True)
class FastSettings:
    """Short settings for the demo, the contract tests and ``--fast``.

    ``options``: model options; ``fit``: fit options per method; ``method``: the
    method the demo uses (default: the model's default method).
    """

    options: Mapping[str, Any] = field(default_factory=dict)
    fit: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    method: str | None = None


@dataclass(frozen=True)
class ModelSpec:
    """Everything bayesrec knows about one registered model.

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
    fit_defaults : mapping
        The model's own settings of inference methods, ``{method: {option: value}}``
        (for example MMSBM's MAP restarts).  :func:`bayesrec.inference.fit` applies
        them to every fit of a model built by :func:`build_model`, under the
        caller's options.
    presets : mapping
        Named sets of model options the user may choose (``build_model(name,
        ratings, preset="point_estimate")``), recorded in the model's config.
    fast : FastSettings
    em_step : EMStep or None
        The E-step of EM, for Dirichlet mixtures (MAP by EM).
    factor_structure : callable or None
        ``config -> FactorStructure``, for the block-Gibbs sampler and fold-in.
    staged_fit : StagedFit or None
        The model's recipe for fitting its components in stages (``method="staged"``).
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
    fit_defaults: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    fast: FastSettings = field(default_factory=FastSettings)
    em_step: EMStep | None = None
    factor_structure: FactorStructureOf | None = None
    staged_fit: StagedFit | None = None

    def options(self) -> dict[str, Any]:
        """The factory's (or class's) keyword options with their defaults."""
        sig = inspect.signature(self.build)
        return {
            k: p.default
            for k, p in sig.parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is not inspect.Parameter.empty
        }

    def resolve_method(self, method: str | None = None, *, fast: bool = False) -> str:
        """``method``, else the fast-mode method (when ``fast``), else the default.

        An unknown method raises, listing the model's methods.
        """
        method = method or (self.fast.method if fast else None) or self.default_method
        if method not in self.methods:
            raise InputError(
                f"unknown method {method!r} for model {self.name!r}; valid methods are: "
                f"{', '.join(self.methods)}"
            )
        return method

    def model_options(self, options: Mapping | None = None, *, fast: bool = False) -> dict:
        """The caller's model options over the fast ones (when ``fast``), checked by name."""
        merged = {**(self.fast.options if fast else {}), **(options or {})}
        self.check_options(merged)
        return merged

    def fit_options(self, method: str, fit_options: Mapping | None = None, *,
                    fast: bool = False) -> dict:
        """The caller's fit options over the fast ones for ``method`` (when ``fast``).

        The model's ``fit_defaults`` are not merged here: :func:`bayesrec.inference.fit`
        applies them, whatever the entry point.
        """
        return {**(self.fast.fit.get(method, {}) if fast else {}), **(fit_options or {})}

    def check_options(self, options: Mapping) -> None:
        """Raise for option names the factory (or class) does not take."""
        valid = set(self.options()) | ({"preset"} if self.presets else set())
        unknown = sorted(set(options) - valid)
        if unknown:
            raise InputError(
                f"unknown option(s) {unknown} for model {self.name!r}; valid options are: "
                f"{', '.join(sorted(valid)) or '(none)'}"
            )

    def expand_preset(self, options: Mapping) -> dict:
        """``options`` with a ``preset`` key replaced by the preset's options (under the
        explicit ones)."""
        options = dict(options)
        preset = options.pop("preset", None)
        if preset is None:
            return options
        if preset not in self.presets:
            valid = ", ".join(sorted(self.presets)) or "(none)"
            raise InputError(f"unknown preset {preset!r} for model {self.name!r}; its presets "
                             f"are: {valid}")
        return {**self.presets[preset], **options}


_REGISTRY: dict[str, ModelSpec] = {}


def register(name: str, *, kind: Literal["bayesian", "baseline"] = "bayesian", title: str,
             reference: str = "", summary: str = "", predicts="gaussian",
             methods: tuple[str, ...] | None = None, default_method: str | None = None,
             fit_defaults: Mapping | None = None, presets: Mapping | None = None,
             fast: FastSettings | None = None, em_step: EMStep | None = None,
             factor_structure: FactorStructureOf | None = None,
             staged_fit: StagedFit | None = None):
    """Class/function decorator adding a model to the registry under ``name``.

    A decorated factory, called directly (``pmf(ratings, n_factors=5)``), is
    :func:`build_model` of its name: the model it returns carries its spec and config,
    whichever way it was made.
    """

    def decorate(obj):
        if name in _REGISTRY and _REGISTRY[name].build is not inspect.unwrap(obj):
            raise ValueError(f"a model named {name!r} is already registered")
        ms = methods or (BAYESIAN_METHODS if kind == "bayesian" else ("fit",))
        _REGISTRY[name] = ModelSpec(
            name=name, kind=kind, build=obj, title=title, reference=reference,
            summary=summary or (inspect.getdoc(obj) or "").split("\n")[0], predicts=predicts,
            methods=ms, default_method=default_method or ms[0],
            fit_defaults=dict(fit_defaults or {}), presets=dict(presets or {}),
            fast=fast or FastSettings(), em_step=em_step, factor_structure=factor_structure,
            staged_fit=staged_fit,
        )
        if kind == "baseline":
            return obj

        @functools.wraps(obj)
        def factory(ratings, **options):
            return build_model(name, ratings, **options)

        return factory

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


@dataclass(frozen=True)
class ModelInfo:
    """What :func:`build_model` attaches to a model: its spec, full config and data."""

    name: str
    config: dict[str, Any]
    ratings: Ratings
    spec: ModelSpec

    def config_json(self) -> str:
        return json.dumps(self.config, sort_keys=True, default=_json_default)


def _json_default(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, tuple):
        return list(x)
    raise TypeError(f"option value {x!r} is not JSON-serialisable")


def build_model(name: str, ratings: Ratings, **options) -> pm.Model:
    """Build the registered Bayesian model ``name`` on ``ratings``.

    Options are checked against the factory's signature (an unknown option raises
    listing the valid ones); ``preset="..."`` applies one of the model's named
    presets under the explicit options.  The full config (defaults filled in, the
    preset's name kept) is recorded on the returned model with its spec, so that a
    fit can say which model and config produced it, apply the model's own fit
    settings, and rebuild the model later.  A factory that derives an option from
    the data (for example MPMA's clusters) records the derived value as the dict
    attribute ``bayesrec_derived_options`` of its model; it replaces the option in
    the config, so that rebuilding uses it rather than deriving it again.
    """
    spec = get_spec(name)
    if spec.kind != "bayesian":
        raise InputError(f"{name!r} is a baseline, not a PyMC model; use "
                         "bayesrec.recommenders.make_recommender()")
    if not isinstance(ratings, Ratings):
        raise InputError(f"a model needs a bayesrec.Ratings, got {type(ratings).__name__}")
    spec.check_options(options)
    factory_options = spec.expand_preset(options)
    spec.check_options(factory_options)
    config = {**spec.options(), **factory_options}
    if options.get("preset") is not None:
        config["preset"] = options["preset"]
    model = spec.build(ratings, **factory_options)
    config.update(getattr(model, "bayesrec_derived_options", None) or {})
    _check_json(config, name)
    model.bayesrec_info = ModelInfo(name=name, config=config, ratings=ratings, spec=spec)
    return model


def _check_json(config: dict, name: str) -> None:
    try:
        json.dumps(config, default=_json_default)
    except TypeError as exc:
        raise InputError(f"the options of {name!r} must be plain values (numbers, strings, "
                         f"lists, dicts) so that a fit can record them: {exc}") from None


def model_info(model: pm.Model) -> ModelInfo | None:
    """The :class:`ModelInfo` of a model built by :func:`build_model` (else None)."""
    return getattr(model, "bayesrec_info", None)


def spec_of(model: pm.Model) -> ModelSpec | None:
    """The spec of a model built by :func:`build_model` (else None: a custom or edited model)."""
    info = model_info(model)
    return info.spec if info is not None else None


def model_table() -> str:
    """The registry as a markdown table (the README's model table is this text)."""
    rows = ["| name | kind | model | methods (default in bold) | presets | reference |",
            "|---|---|---|---|---|---|"]
    for s in list_models():
        methods = ", ".join(f"**{m}**" if m == s.default_method else m for m in s.methods)
        presets = ", ".join(f"`{p}`" for p in s.presets) or "-"
        rows.append(f"| `{s.name}` | {s.kind} | {s.title} | {methods} | {presets} | "
                    f"{s.reference} |")
    return "\n".join(rows)
