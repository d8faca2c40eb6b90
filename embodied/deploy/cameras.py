"""Cameras of a deployment, and the watch that turns a failing one into a fault.

    Camera          the protocol: `name`, `read() -> uint8[H, W, 3]` RGB, `close()`
    OpenCVCamera    a USB / V4L2 camera (or a video file) through OpenCV, an optional extra
    SimCamera       a camera of a MuJoCo scene, rendered offscreen (emulated deployment)
    FreezeDetector  a camera whose frames stopped changing
    CameraRig       the cameras a bundle needs, read once per control tick and watched

A policy that goes on acting on a frozen picture acts on a world that is no longer there,
so a camera that fails, stalls or freezes is a fault of the deployment (`CameraError`).
No OpenCV and no MuJoCo at import: each is imported by the class that needs it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from embodied.deploy.errors import CameraError, DeployError

OPENCV_HINT = "pip install opencv-python-headless (or pip install -e '.[deploy]')"


class Camera(Protocol):
    """One camera. `noiseless = True` (optional attribute) marks a rendered camera, whose
    frames of a still scene are bit-identical (see `FreezeDetector`)."""

    name: str

    def read(self) -> np.ndarray:
        """The newest frame, uint8[H, W, 3] RGB at the size the camera was opened with."""
        ...

    def close(self) -> None: ...


def parse_camera_specs(flags: Sequence[str]) -> dict[str, int | str]:
    """`["wrist=0", "front=/dev/video2"]` -> {"wrist": 0, "front": "/dev/video2"}: a device
    index where the source is a number, else a device or file path."""
    out: dict[str, int | str] = {}
    for flag in flags:
        name, sep, source = flag.partition("=")
        if not sep or not name or not source:
            raise DeployError(f"--camera {flag!r}: write NAME=SOURCE with a device index or path, "
                              "e.g. --camera wrist=0 --camera front=/dev/video2")
        if name in out:
            raise DeployError(f"--camera {name} is given twice ({out[name]!r} and {source!r}); name each camera once")
        out[name] = int(source) if source.isdigit() else source
    return out


class OpenCVCamera:
    """A camera through OpenCV (`cv2.VideoCapture` by index or path), frames resized to
    `size` = (height, width) [px], RGB.

    A background thread grabs continuously and `read` returns the newest frame without
    waiting: OpenCV queues frames, and reading on demand at a control rate slower than the
    camera's returns pictures several ticks old. A camera slower than the control rate gives
    the same frame twice, which a real sensor's noise tells apart from a freeze.

    Args:
        source: device index or path (a video file plays once, as fast as it decodes).
        size: (height, width) of the frames returned [px].
        name: the camera's name in the robot spec.
        timeout: no new frame for this long [s] (the first one: since opening) is a fault.
    """

    def __init__(self, source: int | str, size: tuple[int, int], name: str = "", timeout: float = 1.0):
        self.name, self.size, self.timeout = name or str(source), size, timeout
        try:
            import cv2
        except ImportError as e:
            raise CameraError(self.name, f"reading cameras needs OpenCV, which is not installed: {OPENCV_HINT}") from e
        self._cv2 = cv2
        self.capture = cv2.VideoCapture(source)
        if not self.capture.isOpened():
            raise CameraError(self.name, f"cannot open {source!r}; check the device index or path (ls /dev/video*) "
                                         "and that no other program holds it")
        self._cond = threading.Condition()
        self._frame: np.ndarray | None = None  # newest BGR frame as captured
        self._stamp = time.monotonic()  # when it arrived (opening time before the first) [s]
        self._closed = False
        self._thread = threading.Thread(target=self._grab, name=f"camera {self.name}", daemon=True)
        self._thread.start()

    def _grab(self) -> None:
        while not self._closed:
            ok, frame = self.capture.read()
            with self._cond:
                if ok:
                    self._frame, self._stamp = frame, time.monotonic()
                    self._cond.notify_all()
            if not ok:
                time.sleep(0.01)  # unplugged, or a file at its end: try again, without spinning

    def read(self) -> np.ndarray:
        with self._cond:
            if self._frame is None:
                self._cond.wait_for(lambda: self._frame is not None, timeout=self.timeout)
            frame, age = self._frame, time.monotonic() - self._stamp
        if frame is None:
            raise CameraError(self.name, f"no frame within {self.timeout:g} s of opening")
        if age > self.timeout:
            raise CameraError(self.name, f"no new frame for {age:.2f} s (timeout {self.timeout:g} s): unplugged or "
                                         "stalled")
        h, w = self.size
        if frame.shape[:2] != (h, w):
            frame = self._cv2.resize(frame, (w, h), interpolation=self._cv2.INTER_AREA)
        return np.ascontiguousarray(frame[:, :, ::-1])

    def close(self) -> None:
        self._closed = True
        self._thread.join()
        self.capture.release()


class SimCamera:
    """A camera of a MuJoCo scene, rendered offscreen at `size` = (height, width) [px].

    The emulated servo chain steps the same scene in its own thread, so the scene is copied
    for rendering under that chain's `lock`; the picture itself is drawn outside it. Create
    and read it in one thread (an EGL context belongs to the thread that made it).
    """

    noiseless = True

    def __init__(self, scene: Any, name: str, size: tuple[int, int], lock: Any):
        import mujoco

        self.name, self.scene, self.lock = name, scene, lock
        self._renderer = mujoco.Renderer(scene.model, *size)

    def read(self) -> np.ndarray:
        with self.lock:
            self._renderer.update_scene(self.scene.data, self.name)
        return self._renderer.render()

    def close(self) -> None:
        self._renderer.close()


def sim_cameras(scene: Any, lock: Any) -> dict[str, SimCamera]:
    """Every camera of the scene's robot (`scene.robot.cameras`), at its spec resolution."""
    return {c.name: SimCamera(scene, c.name, (c.height, c.width), lock) for c in scene.robot.cameras}


@dataclass
class FreezeDetector:
    """Frames of one camera that stopped changing.

    A real sensor's noise changes every frame, so `frames` bit-identical frames in a row mean
    it stopped. A rendered camera (`noiseless`) gives identical frames of a still scene; for
    it, identical frames count only once the arm has moved more than `motion` since its
    picture last changed.

    Args:
        frames: repeated frames that make a freeze.
        motion: arm motion [rad] (largest state change) that must change a rendered picture.
    """

    frames: int = 15
    motion: float = 0.05
    same: int = field(default=0, init=False)  # repeats of the last frame that counted
    _last: np.ndarray | None = field(default=None, init=False, repr=False)
    _pose: np.ndarray | None = field(default=None, init=False, repr=False)

    def update(self, frame: np.ndarray, pose: np.ndarray, noiseless: bool = False) -> bool:
        """Whether the camera is frozen after `frame`, seen with the arm at `pose`."""
        if self._last is None or not np.array_equal(frame, self._last):
            self._last, self._pose, self.same = frame.copy(), np.asarray(pose).copy(), 0
            return False
        if not noiseless or np.max(np.abs(np.asarray(pose) - self._pose)) > self.motion:
            self.same += 1
        return self.same >= self.frames


class CameraRig:
    """The cameras a bundle needs, read once per control tick, each one watched.

    `read` raises `CameraError` for a read that fails, takes longer than `timeout` [s],
    returns a frame of another shape than `shape`, or comes from a frozen camera.
    """

    def __init__(self, cameras: Mapping[str, Camera], names: Sequence[str], shape: tuple[int, int, int],
                 frames: int = 15, motion: float = 0.05, timeout: float = 0.5,
                 clock: Callable[[], float] = time.monotonic):
        self.cameras = {n: cameras[n] for n in names}
        self.shape, self.frames, self.motion, self.timeout, self.clock = tuple(shape), frames, motion, timeout, clock
        self.reset()

    def reset(self) -> None:
        """Forget what the detectors saw (a new episode)."""
        self.detectors = {n: FreezeDetector(self.frames, self.motion) for n in self.cameras}

    def read(self, pose: np.ndarray) -> dict[str, np.ndarray]:
        """One frame per camera, the arm at `pose` (its state vector)."""
        images = {}
        for name, cam in self.cameras.items():
            started = self.clock()
            try:
                frame = np.asarray(cam.read())
            except CameraError:
                raise
            except Exception as e:  # a driver's own error types: the camera is what failed
                raise CameraError(name, f"read failed ({type(e).__name__}: {e})") from e
            took = self.clock() - started
            if took > self.timeout:
                raise CameraError(name, f"a read took {took:.3f} s (timeout {self.timeout:g} s)")
            if frame.dtype != np.uint8 or frame.shape != self.shape:
                raise CameraError(name, f"gives {frame.dtype}{list(frame.shape)} frames, the bundle expects "
                                        f"uint8{list(self.shape)}; open it at the robot spec's resolution")
            if self.detectors[name].update(frame, pose, getattr(cam, "noiseless", False)):
                raise CameraError(name, f"froze: the same frame {self.frames + 1} times in a row")
            images[name] = frame
        return images
