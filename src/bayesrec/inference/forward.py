"""Posterior-predictive draws for blocks of pairs, from one compiled function per model.

:func:`pymc.sample_posterior_predictive` compiles a function each time it is called
and stacks the draws of every requested pair before returning them, so predicting
many pairs with many draws holds them all at once (400,000 test pairs x 200 draws x
two variables is 1.3 GB, before any summary), and every call compiles anew (with
Numba, each compiled function stays in memory for the life of the process).

:class:`ForwardSampler` compiles the model's generative graph of the requested
outputs (``mu`` and the observed ``rating``) once per model and set of stored
variables, caches it, and is called for one block of pairs at a time: the caller
points the model's ``user_idx``/``item_idx`` at the block
(:class:`~bayesrec.inference.record.swapped_pairs`) and gets that block's draws.

What is recomputed follows PyMC's rule: variables downstream of the pairs (the
model's data and the ``obs`` dim) or of random variables the posterior lacks are
recomputed or drawn; stored posterior variables that are not (free variables,
deterministics such as a non-centred model's factors) are inputs, read in place.
Where the graph allows it, the function is vectorised over a leading sample
dimension (:func:`pytensor.graph.replace.vectorize_graph`), so one call serves a
block of draws; otherwise (a likelihood PyTensor cannot vectorise, such as a
``CustomDist``) it is called once per draw.  :meth:`ForwardSampler.reseed` seeds it
as ``sample_posterior_predictive(..., random_seed=seed)`` seeds its own function, and
the draws of a likelihood with one random generator (Gaussian models, MMSBM) are
then those of that function (compiled the same way), bit for bit, when the pairs fit
in one block; over
several blocks the random stream continues from block to block (the same seed and
block size give the same numbers).  Compiled without fast-math
(:func:`~bayesrec.inference.numerics.reproducible`), as fits are.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from pymc.pytensorf import collect_default_updates, reseed_rngs
from pymc.pytensorf import compile as compile_pymc
from pymc.sampling.forward import compile_forward_sampling_function
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.replace import vectorize_graph
from pytensor.graph.traversal import ancestors, general_toposort
from pytensor.tensor.random.type import RandomType

from bayesrec.inference.numerics import reproducible

__all__ = ["ForwardSampler", "forward_sampler", "sample_columns", "trace_constant_lengths"]

#: Numbers a block of draws may hold in the inputs and the widest per-pair intermediate.
DRAW_BLOCK_ELEMENTS = 2**20

_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def trace_constant_lengths(model: pm.Model, posterior: xr.Dataset) -> dict:
    """The model's dim lengths that the posterior's coords hold unchanged.

    As :func:`pymc.sample_posterior_predictive` decides it from a trace: a dim whose
    coord labels are those of the posterior (``user``, ``item``, ``factor``, ...)
    is fixed, so stored draws of variables along it are used as they are; dims the
    posterior lacks (``obs``, whose length the pairs set) are not.
    """
    out = {}
    for dim, length in model.dim_lengths.items():
        if not isinstance(length, SharedVariable) or dim not in posterior.coords:
            continue
        stored = posterior.coords[dim].values
        current = model.coords.get(dim)
        if current is not None:
            same = len(current) == len(stored) and bool(np.all(np.asarray(current) == stored))
        else:
            same = int(length.get_value()) == len(stored)
        if same:
            out[length] = len(stored)
    return out


def _recomputed(outputs, stored: set, random_vars: set, fixed: dict) -> set:
    """Variables of the outputs' graph that must be recomputed, by PyMC's rule: shared data
    the posterior does not fix, random variables it lacks, and what depends on them
    (stored random variables are frozen: never recomputed)."""
    out: set = set()
    for var in general_toposort(outputs, deps=lambda x: x.owner.inputs if x.owner else []):
        if var in stored and var in random_vars:
            continue
        if var.owner is None:
            if (isinstance(var, SharedVariable) and not isinstance(var.type, RandomType)
                    and var not in fixed):
                out.add(var)
        elif (var in random_vars and var not in stored) or any(i in out for i in var.owner.inputs):
            out.add(var)
    return out


class ForwardSampler:
    """One compiled function from posterior draws to ``outputs`` for the current pairs.

    Parameters
    ----------
    model : pm.Model
    posterior : Dataset
        Draws whose stored variables are inputs; only its variable names and coords
        are read here.
    outputs : sequence of str
        Model variables to draw (``mu`` and the observed ``rating``).

    Attributes
    ----------
    inputs : list of str
        The posterior variables the function reads (no other is touched, nor copied:
        for a non-centred model the stored factors suffice).
    vectorised : bool
        Whether one call serves a block of draws (else one call per draw).
    """

    def __init__(self, model: pm.Model, posterior: xr.Dataset,
                 outputs: Sequence[str] = ("mu", "rating")):
        self.outputs = list(outputs)
        names = set(posterior.data_vars)
        stored = [v for v in model.free_RVs + model.deterministics if v.name in names]
        fixed = trace_constant_lengths(model, posterior)
        outs = [model[name] for name in outputs]
        recomputed = _recomputed(outs, set(stored), set(model.basic_RVs), fixed)
        cut = [v for v in stored if v not in recomputed]
        try:
            self._vectorise(model, outs, cut)
        except NotImplementedError:  # a node PyTensor cannot vectorise: one call per draw
            self._per_draw(model, outs, stored, fixed)

    def _vectorise(self, model: pm.Model, outs: list, cut: list) -> None:
        batched = {v: pt.tensor(dtype=v.dtype, shape=(None, *v.type.shape), name=v.name)
                   for v in cut}
        vec = vectorize_graph(outs, replace=batched)
        vec = vec if isinstance(vec, list) else [vec]
        used = set(ancestors(vec))
        needed = [v for v in cut if batched[v] in used]
        inputs = [batched[v] for v in needed]
        with model, reproducible():
            fn = compile_pymc(inputs, vec, random_seed=False, on_unused_input="ignore",
                              allow_input_downcast=True, accept_inplace=True)
        self.inputs = [v.name for v in needed]
        self._dtypes = [v.dtype for v in needed]
        self._set_rngs(fn, collect_default_updates(inputs=inputs, outputs=vec))
        self._fn, self.vectorised = fn, True

    def _per_draw(self, model: pm.Model, outs: list, stored: list, fixed: dict) -> None:
        with model, reproducible():
            fn, _ = compile_forward_sampling_function(
                outputs=outs, vars_in_trace=stored, basic_rvs=model.basic_RVs,
                constant_data=fixed, freeze_vars={v for v in stored if v in model.basic_RVs},
                model=model, random_seed=False,
            )
        names = {v.name for v in stored}
        self.inputs = [v.name for v in fn.maker.fgraph.inputs
                       if not isinstance(v, SharedVariable) and v.name in names]
        self._dtypes = [model[name].dtype for name in self.inputs]
        self._set_rngs(fn, collect_default_updates(inputs=[model[n] for n in self.inputs],
                                                   outputs=outs))
        self._fn, self.vectorised = fn, False

    def _set_rngs(self, fn, order) -> None:
        """The function's random generators, in the order :func:`pymc.compile` seeds them."""
        updated = [i.variable for i in fn.maker.inputs if i.update is not None]
        self._rngs = [rng for rng in order if rng in set(updated)]
        self._rngs += [rng for rng in updated if rng not in set(self._rngs)]

    def reseed(self, seed: int) -> None:
        """Seed the draws as ``sample_posterior_predictive(random_seed=seed)`` would."""
        reseed_rngs(self._rngs, seed)

    def draws(self, columns: dict[str, np.ndarray], n_pairs: int,
              index: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Draw ``outputs`` for the current pairs, once per sample.

        ``columns[name]`` holds the draws of an input variable along a leading sample
        axis (see :func:`sample_columns`); ``index`` picks and orders the samples used
        (default: all), so thinned or repeated draws need no copy of the posterior.
        A vectorised function takes the samples a block at a time, sized so that
        the block's inputs and its widest per-pair intermediate hold at most
        :data:`DRAW_BLOCK_ELEMENTS` numbers.  Returns ``{output: array (samples,
        n_pairs)}``.
        """
        if index is None:
            index = np.arange(len(columns[self.inputs[0]]) if self.inputs else 1)
        index = np.asarray(index)
        out = {name: None for name in self.outputs}
        for block, values in self._calls(columns, index, n_pairs):
            for name, value in zip(self.outputs, values, strict=True):
                if out[name] is None:
                    out[name] = np.empty((len(index), n_pairs), dtype=value.dtype)
                out[name][block] = value
        return out

    def _calls(self, columns, index: np.ndarray, n_pairs: int):
        if not self.vectorised:
            for s, position in enumerate(index):
                yield s, self._fn(**{name: columns[name][position] for name in self.inputs})
            return
        widest = max([1, *(int(np.prod(columns[n].shape[-1:])) for n in self.inputs
                           if columns[n].ndim > 2)])
        per_draw = sum(int(np.prod(columns[n].shape[1:])) for n in self.inputs)
        per_draw += n_pairs * widest
        step = max(1, DRAW_BLOCK_ELEMENTS // max(1, per_draw))
        for start in range(0, len(index), step):
            block = slice(start, min(len(index), start + step))
            picked = index[block]
            if len(picked) > 1 and (np.diff(picked) == 1).all():  # a run: views, no copy
                picked = slice(int(picked[0]), int(picked[-1]) + 1)
            yield block, self._fn(*[np.asarray(columns[name][picked], dtype=dtype)
                                    for name, dtype in zip(self.inputs, self._dtypes,
                                                           strict=True)])


def sample_columns(posterior: xr.Dataset, names: Sequence[str]) -> dict[str, np.ndarray]:
    """The draws of ``names`` with chain and draw merged into one leading sample axis
    (chain-major, as :func:`pymc.sample_posterior_predictive` orders them); views of
    the posterior's arrays where their layout allows, never a copy of other variables."""
    out = {}
    for name in names:
        var = posterior[name].transpose("chain", "draw", ...)
        out[name] = var.values.reshape(-1, *var.shape[2:])
    return out


def forward_sampler(model: pm.Model, posterior: xr.Dataset,
                    outputs: Sequence[str] = ("mu", "rating")) -> ForwardSampler:
    """A cached :class:`ForwardSampler` (per model, outputs, stored variable names and
    fixed dim lengths); compiling once keeps repeated predictions from piling up
    compiled functions."""
    lengths = trace_constant_lengths(model, posterior)
    key = (tuple(outputs), frozenset(posterior.data_vars),
           frozenset((var.name, n) for var, n in lengths.items()))
    per_model = _CACHE.setdefault(model, {})
    if key not in per_model:
        per_model[key] = ForwardSampler(model, posterior, outputs)
    return per_model[key]
