"""What every ADVI flavour shares: the stopping rule, and the draws from the approximation.

:func:`monitored_fit` runs :func:`pymc.fit` (mean-field or full-rank ADVI, on a
model or on its minibatch rewrite, :mod:`bayesrec.inference.minibatch`) with
Adam under a :class:`PlateauMonitor`: the learning rate is halved on plateaus of
the mean loss and the fit stops after the last halving.  :func:`approximation_tree`
turns the fitted approximation into a fit's ``posterior`` (plus the data groups),
holding one copy of the draws.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pymc as pm
import pytensor
import xarray as xr
from pymc.util import _get_seeds_per_chain

__all__ = ["PlateauMonitor", "monitored_fit", "approximation_tree"]


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


def approximation_tree(approx, model: pm.Model, var_names: list[str], draws: int,
                       seed: int) -> xr.DataTree:
    """``draws`` from a fitted approximation as a DataTree over ``model``'s variables.

    The same draws as ``approx.sample(draws, random_seed=seed)``, but the
    variables are computed on ``model`` (which may differ from the one fitted, for
    example the full-data model behind a minibatch fit) and only ``var_names``
    are kept, so no data-sized deterministic is evaluated for every draw.  Memory
    is about one copy of the draws (drawn in chunks of at most ``CHUNK_VALUES``
    values: PyMC's sampler holds the noise and its result for every draw at once): untransformed free variables are the approximation's
    draws themselves (no copy), and only transformed variables and deterministics
    are computed, draw by draw, into their own arrays.  (PyMC's trace backends
    hold three copies, which for 80,000 users and items x 10 factors x 100 draws
    is 2 GB more.)  Groups: ``posterior`` (one chain), ``observed_data``,
    ``constant_data``.
    """
    from bayesrec.inference.em import _dims, data_datasets

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
        posterior[var.name] = (("chain", "draw", *_dims(model, var.name, value.shape[2:], coords)),
                               value)
    observed, constant = data_datasets(model)
    return xr.DataTree.from_dict({"posterior": xr.Dataset(posterior, coords=coords),
                                  "observed_data": observed, "constant_data": constant})
