"""Run independent evaluation tasks one after the other, or on a ``dask.distributed`` cluster.

:func:`bayesrec.evaluation.evaluate` and :func:`bayesrec.evaluation.grid` hand
their (candidate, fold) tasks to :func:`run_tasks`.  A task carries everything it
needs, its random seed included, so its result does not depend on which worker
runs it, nor on the order in which tasks finish: the results come back in task
order, identical to a sequential run apart from the timings.

``scheduler`` selects where tasks run:

* ``None``: in this process, one after the other;
* ``"local"``: a :class:`distributed.LocalCluster` started for the call (one
  single-threaded worker process per core, at most one per task) and closed
  afterwards;
* an address such as ``"tcp://10.0.0.5:8786"``: an existing cluster's scheduler
  (its workers need ``bayesrec`` installed, in the same version).  Before connecting,
  a ``tcp://`` address is probed: a dask scheduler greets a new connection with a
  short handshake message, and a service that sends anything else (an SSH banner,
  say) is refused with :class:`~bayesrec.errors.InputError` instead of making dask
  read its greeting as the length of a message (exabytes: ``MemoryError``).
  **Trust a scheduler like code**: tasks and results travel as cloudpickle, so the
  scheduler and its workers run what the client sends them, and the results they
  send back are unpickled, i.e. run, here;
* a :class:`distributed.Client` (used as is, not closed) or a cluster object
  (``LocalCluster``, ``SSHCluster``, ...; a client is opened on it and closed).

``dask[distributed]`` is an optional dependency: ``pip install 'bayesrec[dask]'``.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import struct
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from bayesrec.errors import InputError

__all__ = ["run_tasks", "check_scheduler", "describe_scheduler", "dask_client",
           "probe_scheduler"]

#: Seconds to wait for a scheduler's greeting.
PROBE_TIMEOUT = 10.0
#: A dask handshake is a few hundred bytes; a first frame announcing more is not dask's.
_MAX_HANDSHAKE = 1 << 20


def _require_distributed() -> None:
    if importlib.util.find_spec("distributed") is None:
        raise InputError(
            "running on a dask cluster needs dask.distributed; install it with "
            "pip install 'bayesrec[dask]'"
        )


def describe_scheduler(scheduler: Any) -> str | None:
    """A short text naming ``scheduler`` for records: None, "local", an address, a class."""
    if scheduler is None or isinstance(scheduler, str):
        return scheduler
    address = getattr(getattr(scheduler, "scheduler", None), "address", None)
    return address or type(scheduler).__name__


def check_scheduler(scheduler: Any, *, n_workers: int | None = None) -> None:
    """Raise :class:`InputError` unless ``scheduler`` (and ``n_workers``) are usable."""
    if n_workers is not None:
        if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
            raise InputError(f"n_workers must be a positive integer, got {n_workers!r}")
        if scheduler != "local":
            raise InputError("n_workers applies to scheduler='local' only")
    if scheduler is None:
        return
    if isinstance(scheduler, str):
        if scheduler == "local" or "://" in scheduler or ":" in scheduler:
            _require_distributed()
            return
        raise InputError(
            f"scheduler must be None, 'local', a scheduler address such as "
            f"'tcp://host:8786', or a distributed.Client; got {scheduler!r}"
        )
    _require_distributed()
    from distributed import Client

    if isinstance(scheduler, Client) or hasattr(scheduler, "scheduler_address"):
        return
    raise InputError(
        f"scheduler must be None, 'local', an address or a distributed.Client, got "
        f"{type(scheduler).__name__}"
    )


def _host_port(address: str) -> tuple[str, int]:
    rest = address.partition("://")[2] or address
    rest = rest.split("/", 1)[0]
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"the dask scheduler address {address!r} needs a port, as in "
                         "tcp://host:8786")
    return host.strip("[]") or "127.0.0.1", int(port)


def _receive(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def probe_scheduler(address: str, timeout: float | None = None) -> None:
    """Raise :class:`InputError` unless the ``tcp://`` ``address`` greets like a dask scheduler.

    A dask scheduler's first message on a new connection is its handshake, framed by
    an 8-byte length (a few hundred bytes).  Anything else (no answer, a closed port,
    a banner of another protocol) is reported in words.  Other protocols (``tls://``,
    ``ucx://``, ...) are not probed.
    """
    scheme = address.partition("://")[0] if "://" in address else "tcp"
    if scheme != "tcp":
        return
    host, port = _host_port(address)
    timeout = PROBE_TIMEOUT if timeout is None else timeout
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            greeting = _receive(sock, 8)
    except TimeoutError:
        raise InputError(f"the service at {address} sent nothing within {timeout:g} s; a dask "
                         "scheduler greets at once: check the address and port (a scheduler "
                         "listens on 8786 by default)") from None
    except OSError as exc:
        raise InputError(f"cannot reach the dask scheduler at {address}: "
                         f"{exc.strerror or exc}; is it running, and is the port right?") from None
    length = struct.unpack("Q", greeting)[0] if len(greeting) == 8 else None
    if length is None or not 0 < length <= _MAX_HANDSHAKE:
        raise InputError(f"the service at {address} is not a dask scheduler: it greeted with "
                         f"{greeting[:8]!r}, not dask's handshake; check the address and port "
                         "(a scheduler listens on 8786 by default)")


@contextmanager
def dask_client(scheduler: Any, *, n_tasks: int = 1,
                n_workers: int | None = None) -> Iterator[Any]:
    """A :class:`distributed.Client` for ``scheduler``; what it starts, it closes.

    ``n_workers`` applies to ``"local"`` only (default: one per core, at most
    ``n_tasks``); each local worker is a process with one thread, so that the
    compiled samplers of two tasks do not compete for one interpreter.
    """
    check_scheduler(scheduler)
    from distributed import Client, LocalCluster

    if isinstance(scheduler, Client):
        yield scheduler
        return
    if scheduler == "local":
        workers = n_workers or max(1, min(n_tasks, os.cpu_count() or 1))
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            yield client
        return
    if isinstance(scheduler, str):
        probe_scheduler(scheduler)
    try:
        client = Client(scheduler)  # an address or a cluster object
    except OSError as exc:
        raise InputError(f"cannot reach the dask scheduler at {scheduler!r}: {exc}") from None
    except MemoryError:  # dask read a non-dask greeting as a message length
        raise InputError(f"the service at {scheduler!r} does not speak dask's protocol (dask "
                         "read its first bytes as an impossible message size); check the "
                         "address and port") from None
    with client:
        yield client


def run_tasks(func: Callable[[Any], Any], tasks: Sequence[Any], *, scheduler: Any = None,
              n_workers: int | None = None, before: Callable[[int], None] | None = None,
              after: Callable[[int, Any], None] | None = None) -> list:
    """``[func(task) for task in tasks]``, here or on a dask cluster, in task order.

    Parameters
    ----------
    func : callable
        A module-level function (workers import it by name).
    tasks : sequence
        Its arguments, one per call; each must be picklable.
    scheduler : None, "local", str or distributed.Client
        Where to run; see the module docstring.
    n_workers : int, optional
        Workers of a ``"local"`` cluster.
    before, after : callable, optional
        ``before(i)`` is called when task ``i`` starts (sequentially) or is
        submitted (dask); ``after(i, result)`` when it has finished, in the order
        tasks finish.

    Returns
    -------
    list
        ``func(task)`` for every task, in the order of ``tasks``.  A task that
        raises makes this raise the same exception.

    Notes
    -----
    Tasks on workers that are threads of one process take turns
    (:func:`~bayesrec.inference.numerics.reproducible`): PyTensor's compile settings
    are process-global, and compiles in two threads at once leave them changed.
    Worker processes (the ``"local"`` cluster's) run in parallel.
    """
    tasks = list(tasks)
    before = before or (lambda _i: None)
    after = after or (lambda _i, _result: None)
    if scheduler is None:
        results = []
        for i, task in enumerate(tasks):
            before(i)
            results.append(func(task))
            after(i, results[-1])
        return results
    from distributed import as_completed

    with dask_client(scheduler, n_tasks=len(tasks), n_workers=n_workers) as client:
        futures = []
        for i, task in enumerate(tasks):
            before(i)
            futures.append(client.submit(_one_thread_at_a_time, func, task, pure=False))
        position = {future.key: i for i, future in enumerate(futures)}
        results: list = [None] * len(tasks)
        try:
            for future, result in as_completed(futures, with_results=True):
                i = position[future.key]
                results[i] = result
                after(i, result)
        finally:
            client.cancel([f for f in futures if not f.done()])
    return results


def _one_thread_at_a_time(func: Callable[[Any], Any], task: Any) -> Any:
    """``func(task)`` holding the process's compile lock (see :func:`run_tasks`)."""
    from bayesrec.inference.numerics import reproducible

    with reproducible():
        return func(task)
