"""Language grounding in eval: which object a rollout manipulated, against the one the
instruction named. Driven through `run_policy` (the eval's gymnasium rollout) by the
scripted experts, by an expert sent to a distractor, and by a policy that holds still."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from embodied.eval import Execution, grounding
from embodied.eval.policy_rollout import run_policy
from embodied.eval.rollouts import RolloutResult
from embodied.policy.io import ActionChunk, Observation
from sim_scenes import experts
from sim_scenes.env import TaskEnv


class ExpertPolicy:
    """The task's scripted expert as a `RolloutPolicy` (chunks of one action); `target`
    sends it to another cube than the instruction names."""

    chunk = 1

    def __init__(self, env: TaskEnv, target: str | None = None):
        self.env, self.target, self.expert = env, target, None

    def reset(self, seed: int) -> None:
        instance = self.env.instance
        if self.target is not None:
            instance = dataclasses.replace(instance, target=self.target)
        self.expert = experts.make(self.env.task.name, self.env.scene, instance)

    def act(self, obs: Observation) -> ActionChunk:
        return ActionChunk(self.expert.act()[None].astype(np.float32))


class HoldPolicy:
    """Asks for the pose it sees: the arm stays where it is."""

    chunk = 4

    def reset(self, seed: int) -> None:
        pass

    def act(self, obs: Observation) -> ActionChunk:
        return ActionChunk(np.repeat(obs.state[None], self.chunk, axis=0))


@pytest.fixture(scope="module")
def env():
    env = TaskEnv("lift", "so100")
    yield env
    env.close()


@pytest.mark.parametrize("task", ["lift", "push", "place", "stack"])
def test_the_expert_manipulates_the_named_object(task):
    env = TaskEnv(task, "so100")
    ep = run_policy(env, ExpertPolicy(env), seed=3, execution=Execution())
    env.close()
    assert ep.success and ep.target == env.instance.target == "cube0"
    assert ep.manipulated == ep.target


def test_an_expert_sent_to_a_distractor_is_caught(env):
    ep = run_policy(env, ExpertPolicy(env, target="cube1"), seed=3, execution=Execution())
    assert not ep.success and ep.manipulated == "cube1" != ep.target


def test_a_policy_that_holds_still_manipulates_nothing(env):
    ep = run_policy(env, HoldPolicy(), seed=3, execution=Execution())
    assert ep.steps == env.max_steps and ep.manipulated is None


def test_named_object_rate_counts_moved_and_all_episodes():
    def result(manipulated):
        return RolloutResult("so100", "lift", 0, False, 1, "", 0.0, target="cube0", manipulated=manipulated)

    g = grounding([result("cube0"), result("cube0"), result("cube2"), result(None)])
    assert (g["named"], g["manipulated"], g["episodes"]) == (2, 3, 4)
    assert g["of_manipulated"] == pytest.approx(2 / 3) and g["of_all"] == 0.5
    assert 0 < g["ci95"][0] < 2 / 3 < g["ci95"][1] < 1
    assert grounding([result(None)])["of_manipulated"] is None
