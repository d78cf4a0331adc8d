"""Downloading with a checksum: the path a user with internet takes (``s30 data fetch``)."""

from __future__ import annotations

import hashlib
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from sutskever30.core.errors import DataCorruptError, S30Error


def md5sum(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, dest: Path, md5: str | None, *, timeout: float = 60.0) -> Path:
    """Fetch ``url`` to ``dest`` and check its md5; a mismatch deletes the file and raises.

    The file is written beside ``dest`` and renamed only once complete and verified, so an
    existing good copy is never replaced by a partial or corrupt one.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, part.open("wb") as fh:
            shutil.copyfileobj(response, fh)
    except (urllib.error.URLError, OSError) as err:
        part.unlink(missing_ok=True)
        reason = getattr(err, "reason", err)
        raise S30Error(f"download of {url} failed: {reason}") from None
    if md5 is not None:
        got = md5sum(part)
        if got != md5:
            part.unlink(missing_ok=True)
            raise DataCorruptError(f"checksum mismatch for {url}: md5 {got}, expected {md5}")
    part.replace(dest)
    return dest
