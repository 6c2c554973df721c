"""Simulator configuration and profiles: overrides, file formats, clear errors."""

from __future__ import annotations

import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from locust_burstgpt import simpletok
from locust_burstgpt.sim import PROFILES, SimConfig, load_profile
from locust_burstgpt.sim.openai_api import chat_prompt_ids
from locust_burstgpt.sim.profiles import DEMO_PROFILE


def test_profiles_are_valid_and_the_demo_profile_exists():
    assert {"fast", "a100-7b", "l4-8b"} <= set(PROFILES)
    assert DEMO_PROFILE in PROFILES
    fast = PROFILES["fast"]
    assert fast.step_time(10_000, 1000, 10**6) == fast.step_base_s == 0.001  # a fixed 1 ms step
    assert fast.max_num_seqs >= 1000


def test_profile_overrides_replace_fields_and_check_types():
    p = load_profile("l4-8b", {"max_num_seqs": 3, "step_base_s": 1})
    assert p.max_num_seqs == 3 and p.step_base_s == 1.0 and p.name == "l4-8b"
    with pytest.raises(ValueError, match="max_num_seqs' must be an integer"):
        load_profile("fast", {"max_num_seqs": 2.5})
    with pytest.raises(ValueError, match="unknown profile field 'nope'"):
        load_profile("fast", {"nope": 1})
    with pytest.raises(ValueError, match="must hold one request of max_model_len"):
        load_profile("fast", {"kv_cache_tokens": 100, "max_model_len": 200})


def test_config_dict_and_precedence_of_the_profile_argument():
    c = SimConfig.load(
        None,
        {
            "profile": "a100-7b",
            "model": "m",
            "max_waiting": 5,
            "faults": [{"kind": "http_500", "rate": 0.5}],
        },
    )
    assert c.profile.name == "a100-7b" and c.model == "m" and c.max_waiting == 5
    assert c.faults[0].fault.kind == "http_500" and c.faults[0].rate == 0.5
    assert SimConfig.load("fast", {"profile": "a100-7b"}).profile.name == "fast"
    assert SimConfig.load(None, None).profile.name == "fast"


@pytest.mark.parametrize(
    ("cfg", "needle"),
    [
        ({"modle": "x"}, "unknown key(s) ['modle']"),
        ({"faults": [{"kind": "http_418"}]}, "faults[0]: unknown fault kind 'http_418'"),
        (
            {"faults": [{"kind": "http_500", "rate": 2}]},
            "faults[0]: rate must be a number in [0, 1]",
        ),
        ({"faults": [{"kind": "http_500", "windows": [[5, 1]]}]}, "faults[0]: bad window"),
        (
            {"faults": [{"kind": "http_500", "every": 0}]},
            "faults[0]: every must be an integer >= 1",
        ),
        ({"emit_send_times": "yes"}, "'emit_send_times' must be true or false"),
        ({"max_waiting": -1}, "'max_waiting' must be an integer >= 0"),
    ],
)
def test_config_errors_name_the_key(cfg, needle):
    with pytest.raises(ValueError) as e:
        SimConfig.load(None, cfg)
    assert needle in str(e.value)


def test_config_files_json_and_toml(tmp_path):
    j = tmp_path / "s.json"
    j.write_text('{"profile": "l4-8b", "profile_overrides": {"max_num_seqs": 7}}')
    assert SimConfig.load(None, str(j)).profile.max_num_seqs == 7
    if sys.version_info >= (3, 11):
        t = tmp_path / "s.toml"
        t.write_text(
            'model = "tm"\n[profile_overrides]\nstep_base_s = 0.5\n[[faults]]\nkind = "http_429"\n'
        )
        c = SimConfig.load(None, t)
        assert (
            c.model == "tm"
            and c.profile.step_base_s == 0.5
            and c.faults[0].fault.kind == "http_429"
        )
    with pytest.raises(ValueError, match="missing.json: cannot read"):
        SimConfig.load(None, str(tmp_path / "missing.json"))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "role": st.sampled_from(["system", "user", "assistant", "tool"]),
                "content": st.one_of(
                    st.none(),
                    st.text(max_size=40),
                    st.lists(
                        st.fixed_dictionaries(
                            {"type": st.just("text"), "text": st.text(max_size=10)}
                        ),
                        max_size=2,
                    ),
                ),
            }
        ),
        max_size=5,
    )
)
def test_cached_chat_prompt_ids_equal_simpletok(messages):
    assert chat_prompt_ids(messages) == simpletok.chat_prompt_ids(messages)
    assert chat_prompt_ids(messages) == simpletok.chat_prompt_ids(messages)  # from the cache
