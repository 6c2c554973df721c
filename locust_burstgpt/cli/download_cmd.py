"""``burstgpt download``: fetch an official BurstGPT release file, resumable and sha256-verified."""

from __future__ import annotations

import argparse
import re
import sys

HELP = "Download an official BurstGPT release file (resumable, sha256-verified)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "name",
        nargs="?",
        help="BurstGPT_1, BurstGPT_2, BurstGPT_3, BurstGPT_without_fails_1/2/3 (see --list)",
    )
    parser.add_argument("--dir", default=".", help="Directory to download into (default: current)")
    parser.add_argument(
        "--base-url",
        default=None,
        help="Where the files are; '{name}' is replaced by the file name, otherwise the "
        "name is appended (default: the v2.0 GitHub release of HPMLL/BurstGPT)",
    )
    parser.add_argument(
        "--sha256",
        default=None,
        help="Expected sha256, overriding the built-in pin (e.g. for a mirror with other bytes)",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=5,
        help="Consecutive attempts without progress before giving up (default 5)",
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="Network timeout in seconds (default 30)"
    )
    parser.add_argument(
        "--list", action="store_true", help="List the release files, sizes and pins"
    )


def run(args: argparse.Namespace) -> int:
    from locust_burstgpt.provision.download import (
        DEFAULT_BASE_URL,
        RELEASE_FILES,
        DownloadError,
        Pin,
        download,
        release_file,
    )

    if args.list or not args.name:
        for f in RELEASE_FILES.values():
            rows = f"{f.rows:,} rows" if f.rows else "rows not published"
            print(
                f"{f.name.removesuffix('.csv'):28s} {f.pin.size:>13,} bytes  {rows:>18s}  sha256 {f.pin.sha256}"
            )
        print(f"default base URL: {DEFAULT_BASE_URL}")
        return 0 if args.list else 2
    try:
        release_file(args.name)
    except DownloadError as exc:
        print(f"burstgpt download: error: {exc}", file=sys.stderr)
        return 2
    pin = None
    if args.sha256 is not None:
        if not re.fullmatch(r"[0-9a-fA-F]{64}", args.sha256):
            print(
                "burstgpt download: error: --sha256 expects 64 hexadecimal digits", file=sys.stderr
            )
            return 2
        pin = Pin(args.sha256.lower())
    try:
        path = download(
            args.name,
            args.dir,
            base_url=args.base_url or DEFAULT_BASE_URL,
            pin=pin,
            retries=args.retries,
            timeout_s=args.timeout,
        )
    except (DownloadError, OSError) as exc:
        print(f"burstgpt download: error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0
