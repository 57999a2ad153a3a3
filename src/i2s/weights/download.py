"""Verified downloads into the cache: progress bar, size and hash checks, atomic rename.

* ``I2S_OFFLINE=1`` or no network: fail at once with one line naming the file to fetch and
  the path to put it in.
* Google Drive: the "can't scan for viruses" confirm page is followed (old ``confirm=`` token
  links and the newer ``drive.usercontent.google.com`` form).
* The file streams to ``<dest>.part``, is checked (server Content-Length, expected size,
  SHA-256 or its prefix), and only then renamed into place. Its SHA-256 is written beside it
  (``<dest>.sha256``) and re-checked whenever the cached file is used, so a corrupt or partial
  file is never used.
"""

from __future__ import annotations

import html
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

from i2s.errors import I2SError
from i2s.media.files import sha256_file, write_text_atomic
from i2s.progress import progress_bar

USER_AGENT = "i2s (https://pypi.org/project/i2s)"
CHUNK = 1 << 20
_urlopen: Callable = urllib.request.urlopen  # replaced in tests


def offline() -> bool:
    return os.environ.get("I2S_OFFLINE", "").strip() not in ("", "0", "false", "no")


def gdrive_url(file_id: str) -> str:
    return f"https://drive.google.com/uc?export=download&id={file_id}"


def _confirm_url(page: str, url: str) -> str | None:
    """The real download link hidden in a Google Drive confirm page, if any."""
    form = re.search(r'<form[^>]+id="download-form"[^>]+action="([^"]+)"(.*?)</form>', page,
                     re.S)
    if form:
        fields = dict(re.findall(r'<input[^>]+name="([^"]+)"[^>]+value="([^"]*)"', form.group(2)))
        return html.unescape(form.group(1)) + "?" + urllib.parse.urlencode(fields)
    token = re.search(r"confirm=([0-9A-Za-z_\-]+)", page)
    if token:
        sep = "&" if "?" in url else "?"
        return f"{url}{sep}confirm={token.group(1)}"
    return None


def _open(url: str):
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    resp = _urlopen(req, timeout=60)
    ctype = (resp.headers.get("Content-Type") or "").lower()
    if "text/html" in ctype and ("drive.google.com" in url or "usercontent" in url):
        page = resp.read(2_000_000).decode("utf-8", "replace")
        resp.close()
        nxt = _confirm_url(page, url)
        if nxt is None:
            raise I2SError(f"Google Drive did not serve the file (quota exceeded or file "
                           f"moved): {url}")
        return _open(nxt)
    return resp


def verify_file(path: Path, size: int | None = None, sha256: str | None = None) -> str:
    """SHA-256 of ``path`` after checking it against the expected size and hash (or prefix)."""
    if size is not None and path.stat().st_size != size:
        raise I2SError(f"{path}: size {path.stat().st_size} bytes, expected {size}")
    digest = sha256_file(path)
    if sha256 and not digest.startswith(sha256.lower()):
        raise I2SError(f"{path}: SHA-256 {digest[:16]}... does not match the expected "
                       f"{sha256[:16]}...")
    return digest


def is_cached(dest: Path) -> bool:
    """Cheap presence check (file and its recorded digest); :func:`cached_ok` verifies."""
    return dest.is_file() and dest.with_name(dest.name + ".sha256").is_file()


def cached_ok(dest: Path, size: int | None = None, sha256: str | None = None) -> bool:
    """True if ``dest`` exists and matches its recorded and expected size and hash."""
    record = dest.with_name(dest.name + ".sha256")
    if not dest.is_file() or not record.is_file():
        return False
    try:
        digest = verify_file(dest, size, sha256)
    except I2SError:
        return False
    return digest == record.read_text().strip()


def download(urls: list[str], dest: Path, size: int | None = None,
             sha256: str | None = None, quiet: bool = False,
             aliases: tuple[Path, ...] = ()) -> Path:
    """Fetch the first working URL into ``dest`` (verified, atomic). Reuses a good cache.
    ``aliases``: other paths the same file may have been put at (a hand download keeps the
    server's name, e.g. NVIDIA's ``ffhq.pkl``); the first that exists is renamed to ``dest``
    and then checked like a file placed there by hand."""
    if not dest.is_file():
        for alias in aliases:
            if alias.is_file():
                os.replace(alias, dest)
                old = alias.with_name(alias.name + ".sha256")
                if old.is_file():
                    os.replace(old, dest.with_name(dest.name + ".sha256"))
                break
    if cached_ok(dest, size, sha256):
        return dest
    record = dest.with_name(dest.name + ".sha256")
    if dest.is_file() and not record.is_file():
        # Placed by hand (as the offline message suggests): check what is known, record it.
        digest = verify_file(dest, size, sha256)
        write_text_atomic(record, digest + "\n")
        return dest
    hint = f"download {urls[0]} and put it at {dest}"
    if offline():
        raise I2SError(f"offline (I2S_OFFLINE is set): {hint}")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise I2SError(f"cannot create {dest.parent}: {e.strerror or e}") from None
    part = dest.with_name(dest.name + ".part")
    errors = []
    for url in urls:
        try:
            _fetch(url, part, dest.name, quiet)
            digest = verify_file(part, size, sha256)
        except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
            part.unlink(missing_ok=True)
            errors.append(f"{url}: {getattr(e, 'reason', e)}")
            continue
        except I2SError as e:
            part.unlink(missing_ok=True)
            errors.append(str(e))
            continue
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        os.replace(part, dest)
        write_text_atomic(dest.with_name(dest.name + ".sha256"), digest + "\n")
        return dest
    raise I2SError(f"could not download {dest.name} ({'; '.join(errors)}); {hint}")


def _fetch(url: str, part: Path, name: str, quiet: bool) -> None:
    resp = _open(url)
    try:
        total = resp.headers.get("Content-Length")
        total = int(total) if total and total.isdigit() else None
        got = 0
        with open(part, "wb") as f, progress_bar(total, name, bytes_=True, quiet=quiet,
                                                 leave=False) as bar:
            while block := resp.read(CHUNK):
                f.write(block)
                got += len(block)
                bar.update(len(block))
    finally:
        resp.close()
    if total is not None and got != total:
        raise I2SError(f"{name}: truncated download ({got} of {total} bytes)")
