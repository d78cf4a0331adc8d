"""Downloading with a checksum: the path a user with internet takes (``s30 data fetch``).

``S30_DATA_MIRROR`` (optional) is a base URL that stands in for every official host: the
official ``https://host/path`` is fetched from ``$S30_DATA_MIRROR/host/path``, the layout
``wget --force-directories`` writes. A local mirror is then one ``python -m http.server``.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tqdm import tqdm

from sutskever30.core.errors import DataCorruptError, S30Error


def md5sum(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def mirrored(url: str) -> str:
    """``url`` itself, or its copy under ``$S30_DATA_MIRROR`` when that is set."""
    mirror = os.environ.get("S30_DATA_MIRROR")
    if not mirror:
        return url
    parts = urllib.parse.urlsplit(url)
    return f"{mirror.rstrip('/')}/{parts.netloc}{parts.path}"


def download(url: str, dest: Path, md5: str | None, *, timeout: float = 60.0) -> Path:
    """Fetch ``url`` to ``dest`` (a progress bar on a terminal) and check its md5; a mismatch
    deletes the file and raises.

    The file is written beside ``dest`` and renamed only once complete and verified, so an
    existing good copy is never replaced by a partial or corrupt one.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, part.open("wb") as fh:
            size = int(response.headers.get("Content-Length") or 0) or None
            # disable=None: a bar on a terminal, nothing in logs and captured output
            with tqdm(total=size, desc=dest.name, unit="B", unit_scale=True, disable=None) as bar:
                while block := response.read(1 << 16):
                    fh.write(block)
                    bar.update(len(block))
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as err:
        part.unlink(missing_ok=True)
        reason = err if isinstance(err, urllib.error.HTTPError) else getattr(err, "reason", err)
        raise S30Error(f"download of {url} failed: {reason}") from None
    if md5 is not None:
        got = md5sum(part)
        if got != md5:
            part.unlink(missing_ok=True)
            raise DataCorruptError(f"checksum mismatch for {url}: md5 {got}, expected {md5}")
    part.replace(dest)
    return dest
