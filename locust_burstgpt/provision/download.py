"""``download``: fetch an official BurstGPT release file, resumably, and verify it by sha256.

The bytes go to ``<name>.part``; an interrupted transfer (dropped connection, timeout, Ctrl-C)
resumes from the part file with an HTTP ``Range`` request. Only a file whose size and sha256
match the pin is renamed to its final name, so a file under the final name is always verified.
A mismatch deletes the part file and raises ``DownloadError``.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

#: Release v2.0 of github.com/HPMLL/BurstGPT; ``{name}`` is replaced by the file name.
DEFAULT_BASE_URL = "https://github.com/HPMLL/BurstGPT/releases/download/v2.0/{name}"
CHUNK = 1 << 20
USER_AGENT = "locust-burstgpt-download"


@dataclass(frozen=True)
class Pin:
    """What a downloaded file must be: its sha256 and, when known, its size in bytes."""

    sha256: str
    size: int | None = None


@dataclass(frozen=True)
class ReleaseFile:
    """One official release file and its pin (from the release assets / Git LFS pointers)."""

    name: str
    pin: Pin
    rows: int | None
    description: str


RELEASE_FILES: dict[str, ReleaseFile] = {
    f.name: f
    for f in (
        ReleaseFile(
            "BurstGPT_1.csv",
            Pin("4bb3783693d0a435686fbfc885615d2349bd067239079fa4b749f2e679e12122", 52_283_111),
            1_429_737,
            "first 2 months (61 days), with failures",
        ),
        ReleaseFile(
            "BurstGPT_2.csv",
            Pin("44bf5942b03fca42c01a226a545ad3a750ec62688faecd67b6831c56a8928bf7", 144_819_209),
            None,
            "second 2 months (~60 days), with failures",
        ),
        ReleaseFile(
            "BurstGPT_3.csv",
            Pin("2299986a07388aa303ec2c41d1131e756db650a39ed6ef9dfe7cc3d7f9a43b8f", 231_682_327),
            5_344_021,
            "another 110 days, with Session ID and Elapsed time, with failures",
        ),
        ReleaseFile(
            "BurstGPT_without_fails_1.csv",
            Pin("a4d068a7113ec0290e74063a1b3447dc6001a30e4298eb313581b71006dda1f4", 51_429_517),
            1_404_294,
            "BurstGPT_1 without failed rows",
        ),
        ReleaseFile(
            "BurstGPT_without_fails_2.csv",
            Pin("56193aa9b2bb26128ded43d2d29a960df6bf5af062bcfc9b005f3fcaa4e6e501", 142_376_815),
            3_784_213,
            "BurstGPT_2 without failed rows",
        ),
        ReleaseFile(
            "BurstGPT_without_fails_3.csv",
            Pin("3326259f9efb11845bc5ef85fa97e6f691050b0974621c91ef22acd566c43a40", 217_312_026),
            4_956_058,
            "BurstGPT_3 without failed rows",
        ),
    )
}


class DownloadError(RuntimeError):
    """A download that cannot complete or does not match its pin; says what and where."""


# Errors worth another attempt: the network, not the file system or the pin.
_RETRYABLE = (ConnectionError, TimeoutError, http.client.HTTPException, urllib.error.URLError)


def release_file(name: str) -> ReleaseFile:
    """Look a release file up by name: ``BurstGPT_3``, ``BurstGPT_3.csv``, any case."""
    key = name.strip()
    if not key.lower().endswith(".csv"):
        key += ".csv"
    for fname, f in RELEASE_FILES.items():
        if fname.lower() == key.lower():
            return f
    raise DownloadError(
        f"unknown release file {name!r}; expected one of: "
        + ", ".join(n.removesuffix(".csv") for n in RELEASE_FILES)
    )


def file_url(base_url: str, name: str) -> str:
    """``base_url`` with ``{name}`` replaced, or ``base_url/name`` when it has no placeholder."""
    if "{name}" in base_url:
        return base_url.replace("{name}", name)
    return base_url.rstrip("/") + "/" + name


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def download(
    name: str,
    directory: str | os.PathLike[str] = ".",
    *,
    base_url: str = DEFAULT_BASE_URL,
    pin: Pin | None = None,
    retries: int = 5,
    timeout_s: float = 30.0,
    backoff_s: float = 1.0,
    progress: IO[str] | bool = True,
    opener: Callable[..., http.client.HTTPResponse] | None = None,
) -> Path:
    """Download release file ``name`` into ``directory``; return the verified file's path.

    ``pin`` overrides the official pin (for mirrors or tests). ``retries`` counts consecutive
    failed attempts that received no bytes (an attempt that makes progress resets it).
    ``progress``: True reports on stderr, False is silent, or a text stream to report to.
    """
    release = release_file(name)
    expected = pin or release.pin
    expected = Pin(expected.sha256.lower(), expected.size)
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / release.name
    part = folder / (release.name + ".part")
    url = file_url(base_url, release.name)
    stream = sys.stderr if progress is True else (progress or None)
    bar = _Progress(release.name, expected.size, stream)

    if final.exists():
        actual = sha256_of(final)
        if actual != expected.sha256:
            raise DownloadError(
                f"{final} exists but its sha256 is {actual}, not the pinned {expected.sha256}; "
                "move it away and download again"
            )
        bar.note(f"{final} is already here and verified")
        return final

    open_url = opener or urllib.request.urlopen
    failures = 0
    while True:
        have = part.stat().st_size if part.exists() else 0
        if expected.size is not None and have > expected.size:
            bar.note(
                f"{part} is larger than the file ({have:,} > {expected.size:,} bytes); starting over"
            )
            part.unlink()
            have = 0
        if expected.size is not None and have == expected.size:
            break
        try:
            got, complete, reason = _fetch(open_url, url, part, have, expected, timeout_s, bar)
        except _RETRYABLE as exc:
            got, complete, reason = 0, False, f"{type(exc).__name__}: {exc}"
        if complete:
            break
        failures = 0 if got > 0 else failures + 1
        if failures > retries:
            raise DownloadError(
                f"{url}: gave up after {retries} retries without progress ({reason}); "
                f"{part} is kept, run the command again to resume"
            )
        bar.note(f"{reason}; resuming at byte {part.stat().st_size if part.exists() else 0:,}")
        if failures:
            time.sleep(backoff_s * failures)

    bar.done()
    actual = sha256_of(part)
    if actual != expected.sha256:
        part.unlink()
        raise DownloadError(
            f"{url}: sha256 mismatch: expected {expected.sha256}, got {actual}; "
            f"the downloaded data was deleted and nothing was written to {final}"
        )
    os.replace(part, final)
    bar.note(f"verified sha256 {actual[:16]}..., wrote {final}")
    return final


def _fetch(
    open_url: Callable[..., http.client.HTTPResponse],
    url: str,
    part: Path,
    have: int,
    expected: Pin,
    timeout_s: float,
    bar: _Progress,
) -> tuple[int, bool, str]:
    """One HTTP attempt from byte ``have``: (bytes received, file complete, why it stopped early).

    Connection errors before the body raise (the caller retries); errors while reading the
    body end the attempt with what was received, so progress is never counted as a failure.
    """
    headers = {"User-Agent": USER_AGENT}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = open_url(request, timeout=timeout_s)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to send: the part may already be whole
            return 0, True, ""
        if exc.code in (408, 429) or exc.code >= 500:
            raise ConnectionError(f"HTTP {exc.code} {exc.reason}") from None
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    with response:
        status = response.status
        total = _total_size(response, have if status == 206 else 0)
        if status == 206:
            start = _range_start(response)
            if start != have:
                raise DownloadError(
                    f"{url}: asked for bytes from {have:,}, the server sent from {start}"
                )
        elif status == 200:
            if have:
                bar.note("the server does not resume (no Range support); starting over")
            have = 0
        else:
            raise DownloadError(f"{url}: unexpected HTTP status {status}")
        if total is not None and expected.size is not None and total != expected.size:
            raise DownloadError(
                f"{url}: the server's file has {total:,} bytes, the pin says {expected.size:,}; "
                "wrong file or base URL"
            )
        size = expected.size if expected.size is not None else total
        bar.start(have, size)
        got = 0
        reason = "the connection closed early"
        with open(part, "ab" if have else "wb") as out:
            try:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    got += len(chunk)
                    bar.update(have + got)
            except (ConnectionError, TimeoutError, http.client.HTTPException) as exc:
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if size is None:
        return got, True, ""  # no length to check: the end of the stream is the end of the file
    return got, have + got >= size, reason


def _total_size(response: http.client.HTTPResponse, offset: int) -> int | None:
    content_range = response.headers.get("Content-Range")
    if content_range and "/" in content_range:
        total = content_range.rsplit("/", 1)[1].strip()
        return int(total) if total.isdigit() else None
    length = response.headers.get("Content-Length")
    return offset + int(length) if length and length.isdigit() else None


def _range_start(response: http.client.HTTPResponse) -> int | None:
    content_range = response.headers.get("Content-Range", "")
    try:
        return int(content_range.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


class _Progress:
    """A bar redrawn in place on a terminal; a line every 10 % (or 30 s) otherwise."""

    def __init__(self, name: str, size: int | None, stream: IO[str] | None) -> None:
        self.name = name
        self.size = size
        self.stream = stream
        self.tty = bool(stream is not None and hasattr(stream, "isatty") and stream.isatty())
        self.t0 = time.monotonic()
        self.base = 0
        self.last_draw = 0.0
        self.last_step = -1
        self.drawn = False

    def note(self, text: str) -> None:
        if self.stream is None:
            return
        if self.drawn and self.tty:
            self.stream.write("\n")
            self.drawn = False
        self.stream.write(f"{self.name}: {text}\n")
        self.stream.flush()

    def start(self, have: int, size: int | None) -> None:
        self.size = size
        self.base = have
        self.t0 = time.monotonic()

    def update(self, done: int) -> None:
        if self.stream is None:
            return
        now = time.monotonic()
        rate = (done - self.base) / max(now - self.t0, 1e-9)
        if self.tty:
            if now - self.last_draw < 0.1:
                return
            self.last_draw = now
            self.stream.write("\r" + self._line(done, rate, bar=True))
            self.drawn = True
        else:
            step = int(done * 10 // self.size) if self.size else -1
            if step == self.last_step and now - self.last_draw < 30:
                return
            self.last_step, self.last_draw = step, now
            self.stream.write(self._line(done, rate, bar=False) + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.stream is not None and self.drawn and self.tty:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False

    def _line(self, done: int, rate: float, *, bar: bool) -> str:
        mb = f"{done / 1e6:,.1f}" + (f"/{self.size / 1e6:,.1f} MB" if self.size else " MB")
        speed = f"{rate / 1e6:.1f} MB/s"
        if not self.size:
            return f"{self.name} {mb} {speed}"
        frac = min(done / self.size, 1.0)
        if bar:
            filled = int(frac * 30)
            return f"{self.name} [{'#' * filled}{'.' * (30 - filled)}] {frac:6.1%} {mb} {speed}"
        return f"{self.name}: {frac:.0%} {mb} {speed}"
