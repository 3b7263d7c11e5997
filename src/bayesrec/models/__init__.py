"""Model factories and baselines, and the registry that names them.

Importing this package registers every built-in model; each model is one module
with its factory (or baseline class), its defaults and its hooks, registered by
``@register(...)``.
"""

from bayesrec.models.registry import (
    FastSettings,
    ModelInfo,
    ModelSpec,
    build_model,
    get_spec,
    list_models,
    model_info,
    model_table,
    register,
    spec_of,
)

__all__ = [
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

# importing the modules registers their models
from bayesrec.models import baselines  # noqa: E402, F401
from bayesrec.models import bpmf as _bpmf  # noqa: E402, F401
from bayesrec.models import mmsbm as _mmsbm  # noqa: E402, F401
from bayesrec.models import mpma as _mpma  # noqa: E402, F401
from bayesrec.models import pmf as _pmf  # noqa: E402, F401
