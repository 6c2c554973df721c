"""``burstgpt sim``: serve the embedded LLM server simulator until stopped (SIGINT/SIGTERM)."""

from __future__ import annotations

import argparse

HELP = "run the embedded OpenAI-compatible LLM server simulator"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from locust_burstgpt.sim.launch import add_arguments as add_sim_arguments

    add_sim_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from locust_burstgpt.sim.launch import serve

    return serve(args)
