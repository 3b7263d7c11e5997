"""Model factories and baselines, and the registry that names them."""

from bayesrec.models.registry import (
    ModelSpec,
    build_model,
    get_spec,
    list_models,
    make_recommender,
    model_info,
    register,
)

__all__ = [
    "ModelSpec",
    "build_model",
    "get_spec",
    "list_models",
    "make_recommender",
    "model_info",
    "register",
]

# importing the modules registers their models
from bayesrec.models import baselines  # noqa: E402, F401
from bayesrec.models import bpmf as _bpmf  # noqa: E402, F401
from bayesrec.models import mmsbm as _mmsbm  # noqa: E402, F401
from bayesrec.models import mpma as _mpma  # noqa: E402, F401
from bayesrec.models import pmf as _pmf  # noqa: E402, F401
