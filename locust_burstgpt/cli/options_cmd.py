"""``burstgpt options``: list the plugin's ``--burstgpt-*`` Locust options (Locust's own ``--help``
is printed before a locustfile loads, so it cannot show them)."""

from __future__ import annotations

import argparse

HELP = "List the --burstgpt-* options of the Locust plugin"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--markdown", action="store_true", help="Print a Markdown table (as in the README)"
    )


def run(args: argparse.Namespace) -> int:
    from locust_burstgpt.options import format_help, format_markdown_table

    print(format_markdown_table() if args.markdown else format_help())
    return 0
