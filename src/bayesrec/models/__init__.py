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
