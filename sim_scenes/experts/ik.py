"""Damped least-squares inverse kinematics for a robot's end-effector site.

Why not a QP solver (mink): the experts only need position + orientation of one site,
warm-started from the previous solution at every control tick; damped least squares with
a posture term in the null space and clipping to joint limits does that in a few
microseconds per iteration with nothing beyond numpy and mujoco.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np


@dataclass(frozen=True)
class IKResult:
    q: np.ndarray  # arm joint positions [rad]
    pos_error: float  # [m]
    rot_error: float  # [rad]

    @property
    def converged(self) -> bool:
        return self.pos_error < 2e-3 and self.rot_error < 0.05


class DifferentialIK:
    """IK over the arm joints of `joint_names` for the site `site`, on a private MjData.

    Args:
        model: compiled model holding the robot (other bodies are ignored).
        joint_names: arm joints, in action order.
        site: end-effector site name; its z-axis is the approach direction.
        posture: preferred joint positions [rad], pulled toward in the null space.
        damping: Levenberg-Marquardt damping.
        rot_weight: metres of position error worth one radian of orientation error.
    """

    def __init__(self, model: mujoco.MjModel, joint_names: list[str], site: str, posture: np.ndarray,
                 damping: float = 0.03, rot_weight: float = 0.15, posture_gain: float = 0.05):
        self.model = model
        self.data = mujoco.MjData(model)
        jids = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, n) for n in joint_names]
        self.qadr = np.array([model.jnt_qposadr[j] for j in jids])
        self.dadr = np.array([model.jnt_dofadr[j] for j in jids])
        self.lo, self.hi = model.jnt_range[jids].T.copy()
        self.site = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, site)
        self.posture = np.asarray(posture, float)
        self.damping, self.rot_weight, self.posture_gain = damping, rot_weight, posture_gain
        self._jacp = np.zeros((3, model.nv))
        self._jacr = np.zeros((3, model.nv))

    def forward(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Site position [m] and rotation matrix in the world frame for arm joints q."""
        self.data.qpos[self.qadr] = q
        mujoco.mj_kinematics(self.model, self.data)
        return self.data.site_xpos[self.site].copy(), self.data.site_xmat[self.site].reshape(3, 3).copy()

    def solve(self, q_init: np.ndarray, pos: np.ndarray, rot: np.ndarray, iterations: int = 30,
              max_step: float = 0.2) -> IKResult:
        """Joint positions that put the site at `pos` with orientation `rot` (3x3, world)."""
        q = np.clip(np.asarray(q_init, float).copy(), self.lo, self.hi)
        n = len(q)
        quat_err = np.zeros(4)
        for _ in range(iterations):
            cur_pos, cur_rot = self.forward(q)
            mujoco.mj_comPos(self.model, self.data)
            e_pos = pos - cur_pos
            mujoco.mju_mat2Quat(quat_err, (rot @ cur_rot.T).ravel())
            e_rot = np.zeros(3)
            mujoco.mju_quat2Vel(e_rot, quat_err, 1.0)
            if np.linalg.norm(e_pos) < 2e-4 and np.linalg.norm(e_rot) < 2e-3:
                break
            mujoco.mj_jacSite(self.model, self.data, self._jacp, self._jacr, self.site)
            jac = np.vstack([self._jacp[:, self.dadr], self.rot_weight * self._jacr[:, self.dadr]])
            err = np.concatenate([e_pos, self.rot_weight * e_rot])
            jjt = jac @ jac.T + self.damping**2 * np.eye(6)
            dq = jac.T @ np.linalg.solve(jjt, err)
            null = np.eye(n) - np.linalg.pinv(jac, rcond=1e-3) @ jac  # exact null space: no pull against the task
            dq += null @ (self.posture_gain * (self.posture - q))
            scale = max_step / max(max_step, np.abs(dq).max())
            q = np.clip(q + scale * dq, self.lo, self.hi)
        cur_pos, cur_rot = self.forward(q)
        mujoco.mju_mat2Quat(quat_err, (rot @ cur_rot.T).ravel())
        e_rot = np.zeros(3)
        mujoco.mju_quat2Vel(e_rot, quat_err, 1.0)
        return IKResult(q, float(np.linalg.norm(pos - cur_pos)), float(np.linalg.norm(e_rot)))
