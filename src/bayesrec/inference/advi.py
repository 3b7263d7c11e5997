"""ADVI: mean-field (``advi``) and full-rank (``fullrank_advi``) variational fits.

What every ADVI flavour shares (these two and minibatch ADVI,
:mod:`bayesrec.inference.minibatch`) lives here too: :func:`monitored_fit` runs
:func:`pymc.fit` with Adam under a :class:`PlateauMonitor` (the learning rate is
halved on plateaus of the mean loss and the fit stops after the last halving);
:func:`finish` refuses a diverged fit and turns the approximation into a fit's
``posterior`` (:func:`approximation_posterior`, one copy of the draws).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pymc as pm
import pytensor
import xarray as xr
from pymc.util import _get_seeds_per_chain

from bayesrec.errors import FitError
from bayesrec.inference import map as map_method
from bayesrec.inference.options import (
    DecayFactor,
    MethodOptions,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
)
from bayesrec.inference.start import child_seeds, initial_values, stored_var_names, var_dims

__all__ = [
    "FullRankOptions",
    "Options",
    "PlateauMonitor",
    "VariationalOptions",
    "approximation_posterior",
    "finish",
    "monitored_fit",
    "run",
    "run_fullrank",
    "start_point",
]


class VariationalOptions(MethodOptions):
    """What every ADVI flavour takes: ``n`` (iterations at most), ``draws`` (1000, from the
    fitted approximation), ``learning_rate`` (Adam), ``lr_decay`` (0.5), ``max_decays`` (3),
    ``tol`` (1e-3), ``max_seconds`` (None), ``init`` ("prior": a prior draw; "initial_point": the model's
    initial point; "map": a MAP fit),
    ``start_sigma`` (0.1, every sd of the starting approximation).

    Every window of iterations the mean loss of the last window is compared with the
    window before; when it improved by less than ``tol`` (relative) the learning rate is
    multiplied by ``lr_decay``, and the plateau after ``max_decays`` decays stops the fit;
    ``max_seconds`` caps the wall time.  A window whose mean loss is more than 5 % worse
    than the best window's means the optimiser diverged: :class:`~bayesrec.errors.FitError`.
    """

    n: PositiveInt = 30000
    draws: PositiveInt = 1000
    learning_rate: PositiveFloat = 0.01
    lr_decay: DecayFactor = 0.5
    max_decays: NonNegativeInt = 3
    tol: PositiveFloat = 1e-3
    max_seconds: PositiveFloat | None = None
    init: Literal["prior", "initial_point", "map"] = "prior"
    start_sigma: PositiveFloat = 0.1


class Options(VariationalOptions):
    """Mean-field ADVI: the shared options (``n`` 30000, ``learning_rate`` 0.01) and the
    ``window`` (200) over which plateaus of the loss are judged."""

    window: PositiveInt = 200


class FullRankOptions(Options):
    """Full-rank ADVI: the options of mean-field ADVI, a learning rate of 0.001, and the
    mean-field fit it starts from (``mean_field_learning_rate``, 0.01); ``n_mc`` (10) Monte
    Carlo draws per gradient (:func:`monitored_fit` says why)."""

    learning_rate: PositiveFloat = 0.001
    mean_field_learning_rate: PositiveFloat = 0.01
    n_mc: PositiveInt = 10


@dataclass
class PlateauMonitor:
    """PyMC ``fit`` callback: learning rate decayed on plateaus, convergence, time limit.

    Every ``window`` steps the mean loss over the last window is compared with the
    mean over the window before.  When it improved by less than ``tol``
    (relative), the loss has reached the noise floor of the current learning
    rate: the rate is multiplied by ``lr_decay`` (through the shared variable
    that Adam reads).  The plateau after ``max_decays`` decays stops the fit
    (converged).  ``max_seconds`` stops it once that much wall time has passed
    since the first step (compilation excluded).  A window whose mean loss is worse
    than the best window's by more than ``diverge_tol`` (relative) stops it as
    ``"diverged"``: the optimiser is moving away from the optimum (its steps are
    noise), and the approximation it holds is not a posterior.
    """

    learning_rate: pytensor.compile.SharedVariable
    lr_decay: float
    max_decays: int
    window: int
    tol: float
    max_seconds: float | None = None
    diverge_tol: float = 0.05
    stop_reason: str = "max_iterations"
    best: float = float("inf")
    latest: float = float("nan")
    decayed_at: list = field(default_factory=list)
    started: float | None = None
    last: float | None = None
    steps: int = 0

    def __call__(self, approx, losses, i) -> None:
        now = time.perf_counter()
        if self.started is None:
            self.started = now  # after the first step, so compilation is not counted
        self.last, self.steps = now, i
        if self.max_seconds is not None and now - self.started >= self.max_seconds:
            self.stop_reason = "time_limit"
            raise StopIteration(f"time limit of {self.max_seconds} s reached")
        if i % self.window or i < self.window:
            return
        recent = float(np.mean(losses[-self.window:]))
        self.latest = recent
        if not np.isfinite(recent) or recent > self.best + self.diverge_tol * abs(self.best):
            self.stop_reason = "diverged"
            raise StopIteration(f"mean loss {recent:.6g} is worse than the best window's "
                                f"{self.best:.6g}: diverged")
        self.best = min(self.best, recent)
        if i < 2 * self.window:
            return
        before = np.mean(losses[-2 * self.window:-self.window])
        if before - recent >= self.tol * abs(before):
            return  # still improving
        if len(self.decayed_at) >= self.max_decays:
            self.stop_reason = "converged"
            raise StopIteration(f"mean loss improved by less than {self.tol:g} (relative) "
                                f"after {self.max_decays} learning-rate decays")
        rate = self.learning_rate.get_value() * self.lr_decay
        self.learning_rate.set_value(np.asarray(rate, dtype=self.learning_rate.dtype))
        self.decayed_at.append(i)

    @property
    def seconds_per_step(self) -> float:
        """Mean wall time of a step after the first (compilation excluded); NaN if unknown."""
        if self.started is None or self.steps < 2:
            return float("nan")
        return (self.last - self.started) / (self.steps - 1)


def monitored_fit(model: pm.Model, method: str, opts: dict, seed: int, start: dict | None,
                  progressbar: bool, *, window: int,
                  ) -> tuple[pm.variational.opvi.Approximation, xr.Dataset]:
    """``pm.fit`` of ``method`` with Adam under a :class:`PlateauMonitor`; approximation, report.

    Every ADVI flavour (full batch, full rank, minibatch) stops the same way: the
    learning rate decays on plateaus of the mean loss over ``window`` steps and
    the fit stops at the plateau after ``max_decays`` decays (or ``n`` steps, or
    ``max_seconds``).  The report is the ``advi`` group of a fit: the loss
    history, with the stop reason, the decays and the time per step in attrs.
    Mean-field ADVI starts every variable's sd at ``opts["start_sigma"]``.  Full-rank
    ADVI starts from a mean-field fit of the same model (its means and sds, with the
    correlations at zero) and then fits the correlations with ``n_mc`` Monte Carlo
    draws per gradient: started, as PyMC does, at an identity covariance with one
    draw per gradient, Adam's steps on the tens of thousands of Cholesky entries of a
    few hundred parameters are mostly noise, and on small PMF and MPMA problems the
    loss rose ten- to a hundred-fold while the plateau rule still reported
    convergence (``tests/test_inference.py::test_fullrank_advi_agrees_with_nuts``).
    """
    if method == "fullrank_advi":
        mean_field, mf_report = monitored_fit(
            model, "advi", {**opts, "learning_rate": opts["mean_field_learning_rate"],
                            "n_mc": 1}, seed, start, progressbar, window=window)
        if mf_report.attrs["stop_reason"] == "diverged":
            return mean_field, mf_report
    rate = pytensor.shared(np.asarray(opts["learning_rate"], dtype=pytensor.config.floatX),
                           name="learning_rate")
    monitor = PlateauMonitor(rate, float(opts["lr_decay"]), int(opts["max_decays"]), window,
                               float(opts["tol"]), opts["max_seconds"])
    fit_kwargs = {"progressbar": progressbar, "obj_optimizer": pm.adam(learning_rate=rate),
                  "callbacks": [monitor], "obj_n_mc": int(opts.get("n_mc", 1))}
    if method == "fullrank_advi":
        inference = pm.FullRankADVI(model=model, random_seed=seed, start=start)
        _start_from_mean_field(inference.approx, mean_field)
        approx = inference.fit(opts["n"], **fit_kwargs)
    else:
        start_sigma = {model.rvs_to_values[rv].name: opts["start_sigma"] for rv in model.free_RVs}
        approx = pm.fit(n=opts["n"], method=method, model=model, random_seed=seed, start=start,
                        start_sigma=start_sigma, **fit_kwargs)
    loss = np.asarray(approx.hist, dtype=float)
    report = xr.Dataset({"loss": ("iteration", loss)},
                        coords={"iteration": np.arange(1, len(loss) + 1)})
    report.attrs.update({
        "n_iterations": len(loss), "max_iterations": opts["n"],
        "converged": monitor.stop_reason == "converged", "stop_reason": monitor.stop_reason,
        "method": method, "convergence_window": window,
        "final_learning_rate": float(rate.get_value()),
        "lr_decayed_at": list(monitor.decayed_at),
        "seconds_per_iteration": monitor.seconds_per_step,
        "best_window_loss": monitor.best, "last_window_loss": monitor.latest,
    })
    if method == "fullrank_advi":
        report.attrs.update({"mean_field_iterations": mf_report.attrs["n_iterations"],
                             "mean_field_stop_reason": mf_report.attrs["stop_reason"],
                             "mean_field_best_window_loss": mf_report.attrs["best_window_loss"]})
    return approx, report


def _start_from_mean_field(approx, mean_field) -> None:
    """Set a full-rank approximation to a mean-field one: same means and sds, no correlation.

    Both flatten the model's value variables in the same order; PyMC stores each sd
    as ``rho`` with ``sd = log(1 + exp(rho))``, on the Cholesky diagonal for full rank.
    """
    (group,), (mf_group,) = approx.groups, mean_field.groups
    if group.ddim != mf_group.ddim:
        raise ValueError("the mean-field and full-rank approximations differ in size")
    group.params_dict["mu"].set_value(mf_group.params_dict["mu"].get_value())
    l_tril = group.params_dict["L_tril"]
    rows, cols = np.tril_indices(group.ddim)
    values = np.zeros(len(rows), dtype=l_tril.dtype)
    values[rows == cols] = mf_group.params_dict["rho"].get_value()
    l_tril.set_value(values)


#: Largest number of values (draws x parameters) drawn from an approximation at once.
CHUNK_VALUES = 2**23


def _draw_in_chunks(approx, draws: int, seed: int) -> dict[str, np.ndarray]:
    """``draws`` value-space draws of ``approx``, at most ``CHUNK_VALUES`` values at a time.

    One chunk (small models, or few draws) gives exactly ``approx.sample(draws,
    random_seed=seed)``'s draws; more chunks take seeds spawned from ``seed``.
    """
    size = sum(int(np.prod(entry[2])) for group in approx.groups
               for entry in group.ordering.values()) or 1
    chunk = max(1, CHUNK_VALUES // size)
    if draws <= chunk:
        (seed,) = _get_seeds_per_chain(seed, 1)
        return approx.sample_dict_fn(draws, random_seed=seed)
    sizes = [min(chunk, draws - start) for start in range(0, draws, chunk)]
    seeds = _get_seeds_per_chain(seed, len(sizes))
    out: dict[str, np.ndarray] = {}
    done = 0
    for n, s in zip(sizes, seeds, strict=True):
        part = approx.sample_dict_fn(n, random_seed=int(s))
        for name, value in part.items():
            if name not in out:
                out[name] = np.empty((draws, *value.shape[1:]), dtype=value.dtype)
            out[name][done:done + n] = value
        done += n
    return out


def approximation_posterior(approx, model: pm.Model, var_names: list[str], draws: int,
                            seed: int) -> xr.Dataset:
    """``draws`` from a fitted approximation as a posterior Dataset over ``model``'s variables.

    The same draws as ``approx.sample(draws, random_seed=seed)``, but the
    variables are computed on ``model`` (which may differ from the one fitted, for
    example the full-data model behind a minibatch fit) and only ``var_names``
    are kept, so no data-sized deterministic is evaluated for every draw.  Memory
    is about one copy of the draws (drawn in chunks of at most ``CHUNK_VALUES``
    values: PyMC's sampler holds the noise and its result for every draw at once):
    untransformed free variables are the approximation's draws themselves (no copy),
    and only transformed variables and deterministics are computed, draw by draw,
    into their own arrays.  (PyMC's trace backends hold three copies, which for
    80,000 users and items x 10 factors x 100 draws is 2 GB more.)  One chain.
    """
    samples = _draw_in_chunks(approx, draws, seed)
    values = [v.name for v in model.value_vars]
    missing = sorted(set(values) - set(samples))
    if missing:
        raise ValueError(f"the approximation has no values for {missing}")
    keep = set(var_names)
    outputs = [v for v in model.unobserved_value_vars if v.name in keep]
    direct = [v.name for v in outputs if v.name in samples]  # value variable = the variable
    computed = [v for v in outputs if v.name not in samples]
    arrays = {name: samples[name][None] for name in direct}
    if computed:  # transformed free variables and deterministics, from the value variables
        fn = model.compile_fn(computed, inputs=model.value_vars, on_unused_input="ignore",
                              point_fn=False)
        for i in range(draws):
            out = fn(*[samples[name][i] for name in values])
            for var, value in zip(computed, out, strict=True):
                if i == 0:
                    arrays[var.name] = np.empty((1, draws, *np.shape(value)),
                                                dtype=np.asarray(value).dtype)
                arrays[var.name][0, i] = value
    coords = {"chain": np.arange(1), "draw": np.arange(draws)}
    posterior = {}
    for var in outputs:  # model order
        value = arrays[var.name]
        posterior[var.name] = (("chain", "draw", *var_dims(model, var.name, value.shape[2:],
                                                          coords)), value)
    return xr.Dataset(posterior, coords=coords)


def start_point(model: pm.Model, opts: dict, seed: int, progressbar: bool) -> dict | None:
    """Starting means of (any) ADVI: a MAP fit, a prior draw or the model's initial point."""
    if opts["init"] != "map":
        return initial_values(model, opts["init"], seed)
    map_fit = map_method.run(model, map_method.Options().model_dump(), seed, progressbar)
    post = map_fit["posterior"]
    return {rv.name: post[rv.name].values[0, 0] for rv in model.free_RVs}


def finish(approx, report: xr.Dataset, model: pm.Model, method: str, opts: dict,
           seed: int) -> dict:
    """The ``posterior`` and ``advi`` groups of a variational fit; a diverged fit raises
    :class:`~bayesrec.errors.FitError` (its approximation is not a posterior)."""
    if report.attrs["stop_reason"] == "diverged":
        # full rank returns its mean-field start's report when that phase diverged
        start_phase = method == "fullrank_advi" and report.attrs["method"] == "advi"
        rate_key = "mean_field_learning_rate" if start_phase else "learning_rate"
        raise FitError(
            f"{method}{' (its mean-field start)' if start_phase else ''} diverged after "
            f"{report.attrs['n_iterations']} iterations: the mean loss of the last "
            f"{report.attrs['convergence_window']} rose to {report.attrs['last_window_loss']:.6g}"
            f" from a best of {report.attrs['best_window_loss']:.6g}, so the approximation is "
            f"not a posterior.  Try a smaller {rate_key} (now {opts[rate_key]:g}), "
            f"method='advi', or method='nuts'.")
    posterior = approximation_posterior(approx, model, stored_var_names(model), opts["draws"],
                                        seed)
    return {"posterior": posterior, "advi": report}


def run(model: pm.Model, opts: dict, random_seed: int, progressbar: bool, *,
        method: str = "advi") -> dict:
    """Mean-field or full-rank ADVI: the ``posterior`` and the ``advi`` report."""
    seed_init, seed_fit, seed_draw = child_seeds(random_seed, 3)
    start = start_point(model, opts, seed_init, progressbar)
    approx, report = monitored_fit(model, method, opts, seed_fit, start, progressbar,
                                   window=opts["window"])
    return finish(approx, report, model, method, opts, seed_draw)


def run_fullrank(model: pm.Model, opts: dict, random_seed: int, progressbar: bool) -> dict:
    """Full-rank ADVI (see :class:`FullRankOptions`)."""
    return run(model, opts, random_seed, progressbar, method="fullrank_advi")
