"""Entry point of the ``burstgpt`` console script.

Each subcommand lives in its own module exposing ``HELP`` (one line), ``add_arguments(parser)``
and ``run(args) -> int``; only the chosen one's heavy imports are paid for.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

SUBCOMMANDS = {
    "inspect": "locust_burstgpt.cli.inspect_cmd",
    "sim": "locust_burstgpt.cli.sim_cmd",
    "options": "locust_burstgpt.cli.options_cmd",
    "fit": "locust_burstgpt.cli.fit_cmd",
    "synth": "locust_burstgpt.cli.synth_cmd",
    "download": "locust_burstgpt.cli.download_cmd",
    "compare": "locust_burstgpt.cli.compare_cmd",
}


def build_parser() -> argparse.ArgumentParser:
    from locust_burstgpt import __version__

    parser = argparse.ArgumentParser(
        prog="burstgpt",
        description="BurstGPT trace tools and the embedded LLM server simulator for locust-burstgpt.",
    )
    parser.add_argument("--version", action="version", version=f"locust-burstgpt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in SUBCOMMANDS.items():
        if importlib.util.find_spec(module_name) is None:
            continue
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_module", None):
        parser.print_help()
        return 2
    try:
        return int(args._module.run(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
