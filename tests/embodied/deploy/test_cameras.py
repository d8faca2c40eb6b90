"""Camera specs, freeze detection, the camera rig's faults, rendered cameras, OpenCV cameras
(when installed)."""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pytest

from embodied.deploy import (CameraError, CameraRig, DeployError, FreezeDetector, OpenCVCamera, SimCamera,
                             parse_camera_specs)
from embodied.deploy.cameras import GrabbingCamera


def test_camera_specs():
    assert parse_camera_specs(["wrist=0", "front=/dev/video2"]) == {"wrist": 0, "front": "/dev/video2"}
    with pytest.raises(DeployError, match="write NAME=SOURCE"):
        parse_camera_specs(["wrist"])
    with pytest.raises(DeployError, match="given twice"):
        parse_camera_specs(["wrist=0", "wrist=1"])


def test_freeze_detector_tells_a_frozen_sensor_from_a_still_render():
    frame, pose = np.zeros((4, 4, 3), np.uint8), np.zeros(6)
    real = FreezeDetector(frames=3)
    assert not any(real.update(frame, pose) for _ in range(3))
    assert real.update(frame, pose)  # 4 identical frames: 3 repeats
    assert not real.update(frame + 1, pose)  # a new frame starts over
    render = FreezeDetector(frames=3, motion=0.05)
    assert not any(render.update(frame, pose, noiseless=True) for _ in range(10))  # still arm, still picture
    moved = pose + 0.1
    assert [render.update(frame, moved, noiseless=True) for _ in range(3)] == [False, False, True]


class Scripted:
    """A camera that returns `frames[i]` on read i (an exception is raised), optionally slow."""

    def __init__(self, name, frames, delay=0.0):
        self.name, self.frames, self.delay, self.i = name, frames, delay, 0

    def read(self):
        time.sleep(self.delay)
        item = self.frames[min(self.i, len(self.frames) - 1)]
        self.i += 1
        if isinstance(item, Exception):
            raise item
        return item

    def close(self):
        pass


def test_camera_rig_faults():
    ok = np.full((8, 8, 3), 7, np.uint8)
    pose = np.zeros(6)
    rig = CameraRig({"front": Scripted("front", [ok, OSError("device gone")]), "extra": Scripted("extra", [ok])},
                    ["front"], (8, 8, 3))
    assert list(rig.read(pose)) == ["front"]  # cameras the bundle does not read are left alone
    with pytest.raises(CameraError, match=r"camera 'front': read failed \(OSError: device gone\)"):
        rig.read(pose)
    with pytest.raises(CameraError, match=r"gives uint8\[4, 4, 3\] frames, the bundle expects uint8\[8, 8, 3\]"):
        CameraRig({"front": Scripted("front", [ok[:4, :4]])}, ["front"], (8, 8, 3)).read(pose)
    with pytest.raises(CameraError, match="a read took"):
        CameraRig({"front": Scripted("front", [ok], delay=0.05)}, ["front"], (8, 8, 3), timeout=0.01).read(pose)
    frozen = CameraRig({"front": Scripted("front", [ok])}, ["front"], (8, 8, 3), frames=2)
    frozen.read(pose), frozen.read(pose)
    with pytest.raises(CameraError, match="froze: the same frame 3 times"):
        frozen.read(pose)


def test_sim_camera_draws_in_its_own_thread_and_reports_a_stall():
    """A rendered camera behaves as a real one: `read` hands over the newest frame without
    drawing, the picture follows the scene, and a scene it cannot draw is a stalled camera."""
    import mujoco

    from sim_scenes.env import worker_env

    env = worker_env("lift", "so100", images=False)
    env.reset(seed=0)
    scene, lock, spec = env.scene, threading.Lock(), env.scene.robot.cameras[0]
    cam = SimCamera(scene, spec.name, (spec.height, spec.width), lock, fps=50, timeout=0.3)
    try:
        first = cam.read()
        assert first.shape == (spec.height, spec.width, 3) and first.dtype == np.uint8
        with lock:  # the emulated chain's thread holds the scene: nothing can be drawn
            started = time.monotonic()
            assert np.array_equal(cam.read(), first)
            assert time.monotonic() - started < 0.1  # the newest frame, not a new drawing
            scene.reset_robot(scene.arm_q() + 0.4)
            mujoco.mj_forward(scene.model, scene.data)
            time.sleep(0.4)
            with pytest.raises(CameraError, match="no new frame for"):
                cam.read()
        time.sleep(0.1)
        assert not np.array_equal(cam.read(), first)  # drawn again, with the arm moved
    finally:
        cam.close()
    with pytest.raises(CameraError, match="camera 'nowhere': cannot open .*no camera 'nowhere'"):
        SimCamera(scene, "nowhere", (8, 8), lock)


class Unplugged(GrabbingCamera):
    """Grabs `good` frames, then its driver raises, as a camera pulled out of its port."""

    def __init__(self, good):
        self.good = good
        super().__init__("wrist", timeout=1.0)

    def _grab(self):
        if self.good == 0:
            raise OSError("device gone")
        self.good -= 1
        return np.zeros((4, 4, 3), np.uint8)


def test_a_grabbing_camera_reports_its_driver_error_at_the_next_read_not_at_opening():
    for good in (0, 1):  # fails at once (still opened: `_setup` succeeded), or after a frame
        camera = Unplugged(good)
        try:
            with pytest.raises(CameraError, match="camera 'wrist': stopped \\(OSError: device gone\\)"):
                for _ in range(200):  # a frame or two may come first
                    camera.read()
                    time.sleep(0.01)
        finally:
            camera.close()


def test_opencv_missing_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # as if not installed
    with pytest.raises(CameraError, match="pip install opencv-python-headless"):
        OpenCVCamera(0, (96, 96), "front")


def test_opencv_camera_reads_resized_rgb_and_times_out(tmp_path):
    pytest.importorskip("cv2")
    from embodied.media import write_mp4

    colors = [(200, 30, 30)] * 10
    path = write_mp4(tmp_path / "cam.mp4", [np.full((64, 80, 3), c, np.uint8) for c in colors], fps=30)
    cam = OpenCVCamera(str(path), (48, 32), "front", timeout=0.3)
    try:
        frame = cam.read()
        assert frame.shape == (48, 32, 3) and frame.dtype == np.uint8
        assert abs(int(frame[..., 0].mean()) - 200) < 12 and frame[..., 2].mean() < 60  # RGB, not BGR
        time.sleep(0.5)  # the file has ended: no new frame for longer than the timeout
        with pytest.raises(CameraError, match="no new frame for"):
            cam.read()
    finally:
        cam.close()
    with pytest.raises(CameraError, match="cannot open"):
        OpenCVCamera(str(tmp_path / "missing.mp4"), (48, 32), "front")
