"""PyMC NUTS on the Markov blanket of some variables (the ``hyper="nuts"`` alternative)."""

from __future__ import annotations

import pymc as pm
from pymc.model.core import ValueGradFunction
from pytensor.graph.basic import Constant
from pytensor.graph.traversal import ancestors, graph_inputs

__all__ = ["blanket_terms", "markov_blanket_nuts"]


def blanket_terms(model: pm.Model, rvs: list) -> list:
    """``rvs`` and the model terms (random variables, potentials) that depend on them directly.

    A term depends on ``rvs`` when one of them is among the ancestors of its
    distribution's inputs, with the walk stopped at every other random variable
    (so grandchildren, which depend on ``rvs`` only through a child, are left out).
    """
    targets = set(rvs)
    blockers = list(model.basic_RVs)
    children = []
    for term in model.basic_RVs + model.potentials:
        if term in targets:
            continue
        inputs = term.owner.inputs if term in model.basic_RVs else [term]
        if targets & set(ancestors(inputs, blockers=blockers)):
            children.append(term)
    return list(rvs) + children


def markov_blanket_nuts(model: pm.Model, rvs: list, *, initial_point: dict | None = None,
                        compile_kwargs: dict | None = None, **nuts_kwargs) -> pm.NUTS:
    """A PyMC NUTS step for ``rvs`` whose log-density is their Markov blanket's only.

    The conditional density of ``rvs`` given every other variable is, up to a
    constant, the sum of their own log-priors and the log-densities of their
    children: exactly what this step's gradient function computes, so NUTS
    leaves the conditional (and with the other steps of a compound sampler, the
    posterior) invariant while skipping the terms that do not involve ``rvs``.
    """
    rvs = [model[rv] if isinstance(rv, str) else rv for rv in rvs]
    ip = initial_point if initial_point is not None else model.initial_point()
    cost = model.logp(vars=blanket_terms(model, rvs), jacobian=True, sum=True)
    value_vars = [model.rvs_to_values[rv] for rv in rvs]
    inputs = {i for i in graph_inputs([cost]) if not isinstance(i, Constant)}
    extra = {v: ip[v.name] for v in model.value_vars if v in inputs and v not in value_vars}
    fn = ValueGradFunction([cost], value_vars, extra, model=model, initial_point=ip,
                           ravel_inputs=True, **(compile_kwargs or {}))
    fn.set_extra_values(ip)
    fn.trust_input = True
    return pm.NUTS(value_vars, model=model, logp_dlogp_func=fn, initial_point=ip, **nuts_kwargs)
