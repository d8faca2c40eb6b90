"""Which object a rollout manipulated: the measure of language grounding.

In a scene with distractors, a failed episode does not say whether the policy could not
grasp or went for the wrong cube; a policy that ignores the instruction still succeeds by
chance (one cube in three on `lift`). Comparing the object the robot moved with the one
the instruction named (`Instance.target`) separates the two.

    watch = ManipulationWatch(env.scene)     # after env.reset
    ...   watch.update()                     # after every control step
    watch.manipulated                        # "cube1", or None when nothing was moved
"""

from __future__ import annotations

import numpy as np

from sim_scenes.scene import Scene

MOVED = 1.0  # displacement from the initial position that counts as moved [cube edges]
LIFTED = 0.5  # rise above the initial height that counts as lifted [cube edges]


class ManipulationWatch:
    """The first cube of `scene` moved by more than `moved` cube edges from where it stood at
    construction, or lifted by more than `lifted` edges: the object the robot went for.

    The first such cube, not the one displaced most at the end: a target knocked into a
    distractor moves that distractor afterwards, and a cube lifted then dropped may end
    near where it started. Bins and zones are mocap bodies the robot cannot move.

    Args:
        scene: the scene, its props placed for the episode (after `TaskEnv.reset`).
        moved, lifted: thresholds [cube edges]; well above the settling of a cube at rest.
    """

    def __init__(self, scene: Scene, moved: float = MOVED, lifted: float = LIFTED):
        self.scene = scene
        edge = scene.robot.workspace.object_size
        self.moved, self.lifted = moved * edge, lifted * edge
        self.cubes = [name for name, prop in scene.props.items() if prop.kind == "cube"]
        self.start = {name: scene.body_pos(name) for name in self.cubes}
        self.manipulated: str | None = None

    def update(self) -> str | None:
        """Look at the cubes now (once per control step); the manipulated cube so far."""
        if self.manipulated is None:
            for name in self.cubes:
                delta = self.scene.body_pos(name) - self.start[name]
                if np.linalg.norm(delta) > self.moved or delta[2] > self.lifted:
                    self.manipulated = name
                    break
        return self.manipulated
