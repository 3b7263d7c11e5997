r"""MAP by expectation-maximisation for Dirichlet mixture models (an opt-in MAP optimiser).

Some models are *Dirichlet mixtures*: every free variable is a simplex (or a batch
of simplexes) with a Dirichlet prior of fixed concentration, and each observation's
likelihood is linear in each simplex it touches, because a latent categorical
choice picks one component of it (mixed-membership and latent-class models).  For
them the MAP has a closed-form coordinate-ascent step, EM:

.. math::

    x^{\text{new}} \propto \max(c(x) + \alpha - 1,\ 0), \qquad
    c(x) = x \odot \nabla_x \log p(y \mid x),

where :math:`c(x)` are the *expected counts* of the latent choices given the
current point (for a mixture, ``x * grad`` of the log-likelihood is exactly the
E-step's responsibilities summed per component).  Every step increases the log
posterior ``model.logp(jacobian=False)`` -- the objective of
:func:`pymc.find_MAP` -- so EM and L-BFGS-B look for the same optima; EM needs
no line search, no transform of the simplexes and, with a model-specific kernel,
costs one pass over the data per iteration.

A registered model opts in by declaring an :class:`~bayesrec.models.hooks.EMStep`
in its spec (``register(..., em_step=...)``): a function that returns the training
log-likelihood and the expected counts at a point (typically a fast kernel).  A
model of your own can declare one with :func:`set_em_step`;
:func:`gradient_em_step` builds one for any Dirichlet mixture from the model's own
log-likelihood graph (slower, but it checks a kernel).
:func:`bayesrec.inference.fit` then uses EM for ``method="map"`` when
``optimizer="em"``, or ``"auto"`` and the model has an EM step.  The EM loop
knows nothing about any particular model.

With concentrations :math:`\alpha = 1` the MAP is the maximum-likelihood
estimate (the EM of Godoy-Lorite et al. for the MMSBM); :math:`\alpha > 1` adds
:math:`\alpha - 1` pseudo-counts.  Concentrations below 1 put the posterior mode
on the boundary of the simplex (an infinite density), so EM refuses them.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pymc as pm
import pytensor
import xarray as xr
from pymc.pytensorf import inputvars
from scipy.special import gammaln, xlogy

from bayesrec.errors import InputError
from bayesrec.inference.start import var_dims
from bayesrec.models.hooks import EMStep, ExpectedCounts
from bayesrec.models.registry import spec_of

__all__ = [
    "EMStep",
    "set_em_step",
    "em_step_of",
    "gradient_em_step",
    "dirichlet_concentrations",
    "dirichlet_log_prior",
    "prior_draw",
    "run_em",
    "em_restarts",
    "point_dataset",
]

_ATTR = "bayesrec_em_step"


def set_em_step(model: pm.Model, expected_counts: ExpectedCounts, description: str = "", *,
                thread_safe: bool = False) -> None:
    """Declare a model of your own a Dirichlet mixture whose MAP may be found by EM.

    (A registered model declares its step in its spec instead.)

    ``expected_counts(model, point)`` must return the training log-likelihood at
    ``point`` and, for every free variable, an array of its shape holding
    ``x * d loglik / d x`` (the expected number of times each component of each
    simplex is chosen).  It should read the data from the model (its data
    containers and observed values) so that it follows :func:`pymc.set_data`.
    ``thread_safe=True`` lets independent restarts run in parallel threads (worth
    it when ``expected_counts`` releases the GIL, as a ``nogil`` Numba kernel does).
    """
    free = {rv.name for rv in model.free_RVs}
    dirichlet_concentrations(model)  # raises unless every free variable is Dirichlet
    if not callable(expected_counts):
        raise InputError("expected_counts must be callable")
    setattr(model, _ATTR, EMStep(expected_counts, description or f"EM over {sorted(free)}",
                                 thread_safe))


def em_step_of(model: pm.Model) -> EMStep | None:
    """The EM step of a model: declared with :func:`set_em_step`, else by its spec, else None."""
    declared = getattr(model, _ATTR, None)
    if declared is not None:
        return declared
    spec = spec_of(model)
    return spec.em_step if spec is not None else None


def _is_dirichlet(rv) -> bool:
    return isinstance(rv.owner.op, type(pm.Dirichlet.rv_op))


def dirichlet_concentrations(model: pm.Model) -> dict[str, np.ndarray]:
    """Concentrations of every free variable, broadcast to its shape.

    Raises :class:`InputError` unless each free variable is a Dirichlet whose
    concentration does not depend on other random variables.
    """
    out = {}
    for rv in model.free_RVs:
        if not _is_dirichlet(rv):
            raise InputError(
                f"EM needs every free variable to be a Dirichlet simplex; {rv.name!r} is "
                f"{type(rv.owner.op).__name__}"
            )
        (alpha,) = rv.owner.op.dist_params(rv.owner)
        if inputvars(alpha) or any(v in model.free_RVs for v in pytensor.graph.ancestors([alpha])):
            raise InputError(f"EM needs fixed concentrations; those of {rv.name!r} are random")
        out[rv.name] = np.broadcast_to(_constant_value(alpha), _constant_shape(rv)).copy()
    return out


def _constant_value(x) -> np.ndarray:
    if isinstance(x, pytensor.tensor.TensorConstant):
        return np.asarray(x.data, dtype=float)
    return np.asarray(x.eval(mode="FAST_COMPILE"), dtype=float)


def _constant_shape(rv) -> tuple[int, ...]:
    if all(s is not None for s in rv.type.shape):
        return tuple(rv.type.shape)
    return tuple(int(s) for s in rv.shape.eval(mode="FAST_COMPILE"))


def dirichlet_log_prior(point: dict, concentrations: dict) -> float:
    """Sum of the Dirichlet log-densities of ``point`` (normalising constants included)."""
    total = 0.0
    for name, alpha in concentrations.items():
        x = point[name]
        total += float(np.sum(gammaln(alpha.sum(-1)) - gammaln(alpha).sum(-1)
                              + xlogy(alpha - 1.0, x).sum(-1)))
    return total


def prior_draw(concentrations: dict, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One draw of every simplex from its Dirichlet prior (no component exactly zero)."""
    point = {}
    for name, alpha in concentrations.items():
        g = np.maximum(rng.standard_gamma(alpha), 1e-300)
        point[name] = g / g.sum(-1, keepdims=True)
    return point


#: Smallest simplex component EM keeps: the point stays inside the simplex, so its
#: log-ratio transform (e.g. to start ADVI from the MAP) is finite.  It changes the
#: log-likelihood by about this much relative.
FLOOR = 1e-12


def _m_step(counts: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    x = np.maximum(counts + alpha - 1.0, 0.0)
    total = x.sum(-1, keepdims=True)
    # a simplex with no data and a flat prior has no unique mode: take the prior mean
    mean = alpha / alpha.sum(-1, keepdims=True)
    x = np.maximum(np.where(total > 0, x / np.where(total > 0, total, 1.0), mean), FLOOR)
    return x / x.sum(-1, keepdims=True)


def run_em(model: pm.Model, start: dict, *, maxiter: int, tol: float,
           step: EMStep | None = None,
           concentrations: dict[str, np.ndarray] | None = None) -> tuple[dict, dict]:
    """Iterate EM from ``start`` until the log posterior stops rising or ``maxiter``.

    Stops when one iteration raises ``model.logp(jacobian=False)`` by less than
    ``tol`` times its absolute value.

    Returns
    -------
    point : dict
        The final simplexes by free-variable name.
    report : dict
        ``fun`` (minus the log posterior at ``point``, as :func:`pymc.find_MAP`
        reports it), ``log_likelihood`` (training), ``nit``, ``nfev``,
        ``success`` (converged before ``maxiter``) and ``message``.

    ``concentrations`` (from :func:`dirichlet_concentrations`) may be given to skip
    reading them from the graph, which compiles a PyTensor function: restarts in
    worker threads must not compile, since PyTensor's compile settings are
    process-global and interleaved compiles leave them changed.
    """
    step = step or em_step_of(model)
    if step is None:
        raise InputError("this model declares no EM step; use optimizer='L-BFGS-B'")
    alpha = dirichlet_concentrations(model) if concentrations is None else concentrations
    low = {name: float(a.min()) for name, a in alpha.items() if a.min() < 1}
    if low:
        raise InputError(
            f"MAP by EM needs Dirichlet concentrations >= 1 (below 1 the posterior mode is on "
            f"the simplex boundary, where the density is infinite); got {low}. Raise them or "
            "use NUTS/ADVI"
        )
    point = {name: np.asarray(start[name], dtype=float) for name in alpha}
    previous, converged, nit = -np.inf, False, 0
    for nit in range(1, maxiter + 1):
        loglik, counts = step.expected_counts(model, point)
        logpost = loglik + dirichlet_log_prior(point, alpha)
        if logpost - previous < -1e-6 * abs(logpost):
            raise InputError(
                f"EM lowered the log posterior ({previous:.6g} -> {logpost:.6g}) at iteration "
                f"{nit}: the model's expected counts do not define an EM step"
            )
        if logpost - previous <= tol * abs(logpost):
            converged = True
            break
        previous = logpost
        point = {name: _m_step(np.asarray(counts[name], dtype=float), a)
                 for name, a in alpha.items()}
    else:  # evaluate the last M-step's point
        loglik, _ = step.expected_counts(model, point)
        logpost = loglik + dirichlet_log_prior(point, alpha)
    message = ("relative increase of the log posterior below tol" if converged
               else "maximum number of iterations reached")
    return point, {"fun": -logpost, "log_likelihood": float(loglik), "nit": nit,
                   "nfev": nit + (0 if converged else 1), "success": converged,
                   "message": message}


def gradient_em_step(model: pm.Model, *, mode=None) -> EMStep:
    """An EM step for any Dirichlet mixture, from the model's log-likelihood graph.

    The expected counts are ``x * d loglik / d x`` with the gradient taken by
    PyTensor on the untransformed simplexes.  This is exact for a mixture but
    costs a compiled gradient; model-specific kernels are faster.  ``mode`` is
    the PyTensor compile mode (default: PyTensor's).
    """
    from pymc.model.transform.conditioning import remove_value_transforms

    plain = remove_value_transforms(model)
    values = [plain.rvs_to_values[plain[rv.name]] for rv in model.free_RVs]
    loglik = plain.logp(vars=plain.observed_RVs, jacobian=False)
    grads = pytensor.grad(loglik, values)
    fn = pytensor.function(values, [loglik, *[g * v for g, v in zip(grads, values, strict=True)]],
                           mode=mode, on_unused_input="ignore")
    names = [rv.name for rv in model.free_RVs]

    def expected_counts(_model, point):
        out = fn(*[point[n] for n in names])
        return float(out[0]), dict(zip(names, out[1:], strict=True))

    return EMStep(expected_counts, "x * gradient of the log-likelihood")


def point_dataset(model: pm.Model, points: list[dict]) -> xr.Dataset:
    """Free variables of several points as a posterior Dataset (``chain`` = point, one draw)."""
    data, coords = {}, {"chain": np.arange(len(points)), "draw": [0]}
    for rv in model.free_RVs:
        stacked = np.stack([np.asarray(p[rv.name]) for p in points])[:, None]
        dims = var_dims(model, rv.name, stacked.shape[2:], coords)
        data[rv.name] = (("chain", "draw", *dims), stacked)
    return xr.Dataset(data, coords=coords)


def em_restarts(model: pm.Model, opts: dict, seeds: list[int]):
    """Run EM once per seed from a prior draw: the EM branch of MAP in :func:`~bayesrec.fit`.

    Restarts run in parallel threads when the model's EM step is thread-safe.
    Returns the posterior (one ``chain`` per restart, one draw) and the per-restart
    reports (``seed``, ``fun``, ``nit``, ``nfev``, ``success``, ``message`` and the
    training ``log_likelihood``).
    """
    if opts["init"] != "prior":
        raise InputError(
            f"optimizer 'em' starts every restart from a prior draw (init='prior'), got "
            f"init={opts['init']!r}: a fixed start is a symmetric fixed point of EM"
        )
    alpha = dirichlet_concentrations(model)  # compiled here, once, not in the threads

    def restart(seed):
        start = prior_draw(alpha, np.random.default_rng(seed))
        point, report = run_em(model, start, maxiter=opts["maxiter"], tol=opts["tol"],
                               concentrations=alpha)
        return point, {"seed": seed, **report}

    workers = min(len(seeds), os.cpu_count() or 1) if em_step_of(model).thread_safe else 1
    if workers > 1:  # restarts are independent: the results do not depend on the threads
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(restart, seeds))
    else:
        results = [restart(seed) for seed in seeds]
    points = [point for point, _ in results]
    reports = [report for _, report in results]
    posterior = point_dataset(model, points)
    dims = model.named_vars_to_dims
    extra = [d.name for d in model.deterministics if "obs" not in (dims.get(d.name) or ())]
    if extra:
        posterior = pm.compute_deterministics(posterior, var_names=extra, model=model,
                                              merge_dataset=True, progressbar=False)
    return posterior, reports
