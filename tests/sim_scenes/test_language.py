"""sim_scenes.language: phrasing sets, and the env drawing from the requested set only."""

import itertools
import string

import numpy as np
import pytest

from sim_scenes import language, tasks
from sim_scenes.env import TaskEnv
from sim_scenes.props import COLORS

SLOTS = {"lift": {"object"}, "push": {"object", "zone"}, "place": {"object", "container"}, "stack": {"object", "base"}}


def test_every_task_has_both_sets():
    assert set(language.PHRASINGS) == set(tasks.available())
    for task, sets in language.PHRASINGS.items():
        assert set(sets) == set(language.INSTRUCTION_SETS)
        assert sets["train"] and sets["heldout"]


@pytest.mark.parametrize("task", sorted(language.PHRASINGS))
def test_train_and_heldout_disjoint_and_well_formed(task):
    train, heldout = language.PHRASINGS[task]["train"], language.PHRASINGS[task]["heldout"]
    assert not set(train) & set(heldout)
    for p in (*train, *heldout):
        slots = {f for _, f, _, _ in string.Formatter().parse(p) if f}
        assert slots == SLOTS[task]
        for c1, c2 in itertools.permutations(COLORS, 2):
            words = {k: f"{c1} cube" if k == "object" else f"{c2} thing" for k in slots}
            text = p.format(**words)
            assert len(text) <= language.MAX_LENGTH and set(text) <= set(language.CHARSET)
    # no held-out sentence can be produced by a training phrasing
    words = {k: "red cube" for k in SLOTS[task]}
    assert not {p.format(**words) for p in train} & {p.format(**words) for p in heldout}


def test_phrasings_rejects_unknown_set():
    with pytest.raises(ValueError, match="unknown instruction set"):
        language.phrasings("lift", "validation")


def test_instruct_is_seeded():
    a = language.instruct("lift", "train", np.random.default_rng(5), object="red cube")
    b = language.instruct("lift", "train", np.random.default_rng(5), object="red cube")
    assert a == b and "red cube" in a


def _sentences(env, instruction_set):
    inst = env.instance
    words = {"object": inst.noun(inst.target)}
    slot = (SLOTS[env.task.name] - {"object"})
    if slot:
        words[slot.pop()] = inst.noun(inst.goal)
    return {p.format(**words) for p in language.PHRASINGS[env.task.name][instruction_set]}


@pytest.mark.parametrize("task", tasks.available())
def test_env_heldout_draws_only_heldout(task):
    env = TaskEnv(task, robot="so100", images=False, instruction_set="heldout")
    for seed in range(12):
        obs, _ = env.reset(seed=seed)
        assert obs["instruction"] in _sentences(env, "heldout")
        assert obs["instruction"] not in _sentences(env, "train")
    # per-reset option overrides the constructor's set
    obs, _ = env.reset(seed=0, options={"instruction_set": "train"})
    assert obs["instruction"] in _sentences(env, "train")


@pytest.mark.parametrize("task", tasks.available())
def test_env_train_uses_several_phrasings(task):
    env = TaskEnv(task, robot="koch", images=False)
    used = set()
    for seed in range(16):
        obs, _ = env.reset(seed=seed)
        assert obs["instruction"] in _sentences(env, "train")
        inst = env.instance
        used.add(obs["instruction"].replace(inst.noun(inst.target), "X").replace(inst.noun(inst.goal) if inst.goal else "\0", "Y"))
    assert len(used) >= 2
