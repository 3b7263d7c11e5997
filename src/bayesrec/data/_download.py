"""A bounded, verified download: a byte cap, an overall deadline, SHA-256 before keeping it.

The body is streamed to a temporary file next to the target, hashed as it
arrives, and renamed into place only when the hash matches.  A response larger
than the cap (declared or sent) or slower than the deadline stops the download;
whatever happens, the temporary file is deleted, so nothing partial is left.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO

from bayesrec.errors import InputError

__all__ = ["download_verified"]

_CHUNK = 1 << 16


def download_verified(url: str, target: Path, *, sha256: str, timeout: float, deadline: float,
                      max_bytes: int) -> Path:
    """Fetch ``url`` into ``target`` if its SHA-256 is ``sha256``.

    Parameters
    ----------
    url : str
        What to fetch (any scheme :func:`urllib.request.urlopen` knows).
    target : Path
        Where the verified file goes; its folder must exist.
    sha256 : str
        Expected SHA-256, in hex.
    timeout : float
        Seconds to wait for the server to connect or to send the next bytes.
    deadline : float
        Seconds for the whole download; it is checked between reads, so it is
        overrun by at most ``timeout``.
    max_bytes : int
        The most bytes accepted.

    Raises
    ------
    InputError
        The response is larger than ``max_bytes`` or its hash is wrong.
    TimeoutError
        The download took longer than ``deadline``.
    OSError
        The server could not be reached or the connection failed.
    """
    try:
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                        suffix=".part")
    except OSError as exc:
        raise InputError(f"cannot write to {target.parent}: {exc.strerror or exc}; make it "
                         "writable or choose another folder") from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            got = _stream(url, out, timeout=timeout, deadline=deadline, max_bytes=max_bytes,
                          by_hand=f"download it by hand and put {target.name} in {target.parent}")
        if got != sha256.lower():
            raise InputError(
                f"checksum mismatch for {url}: expected SHA-256 {sha256.lower()}, got {got}; "
                f"the download was deleted. Retry, or put a verified {target.name} in "
                f"{target.parent} by hand"
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _stream(url: str, out: BinaryIO, *, timeout: float, deadline: float, max_bytes: int,
            by_hand: str) -> str:
    """Copy ``url`` to ``out`` within the limits and return the SHA-256 of what came."""
    end = time.monotonic() + deadline
    digest = hashlib.sha256()
    size = 0
    try:
        with urllib.request.urlopen(url, timeout=min(timeout, deadline)) as resp:
            declared = resp.headers.get("Content-Length", "").strip()
            declared = int(declared) if declared.isdigit() else None
            if declared is not None and declared > max_bytes:
                raise _too_big(url, f"announces {declared:,} bytes", max_bytes)
            read = getattr(resp, "read1", resp.read)  # read1: return what came, do not wait
            while chunk := read(_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise _too_big(url, "sent", max_bytes)
                if time.monotonic() > end:
                    raise _Late(size)
                digest.update(chunk)
                out.write(chunk)
            if declared is not None and size < declared:  # read1 does not raise IncompleteRead
                raise ConnectionError(f"the connection closed after {size:,} of the {declared:,} "
                                      "bytes announced")
    except _Late as late:
        raise TimeoutError(
            f"downloading {url} took longer than the deadline of {deadline:g} s "
            f"({late.args[0]:,} bytes received); the partial download was deleted. Retry on a "
            f"faster connection, pass a longer deadline=, or {by_hand}"
        ) from None
    except InputError:
        raise
    except urllib.error.URLError as exc:
        raise OSError(f"could not download {url} ({exc.reason}); {by_hand}") from exc
    except ValueError as exc:  # not a URL urllib knows
        raise InputError(f"cannot download {url!r}: {exc}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise OSError(f"could not download {url} ({exc or type(exc).__name__}); {by_hand}") from exc
    return digest.hexdigest()


class _Late(Exception):
    """The deadline passed (internal: turned into a TimeoutError with the whole story)."""


def _too_big(url: str, what: str, max_bytes: int) -> InputError:
    return InputError(
        f"the server {what} more than the {max_bytes:,} bytes allowed for {url}; the download "
        "was stopped and deleted. Check the URL, or pass a larger max_bytes= if the file "
        "really is that big"
    )
