"""Cameras of a deployment, and the watch that turns a failing one into a fault.

    Camera          the protocol: `name`, `read() -> uint8[H, W, 3]` RGB, `close()`
    GrabbingCamera  frames that arrive in a thread of their own; `read` takes the newest
    OpenCVCamera    a USB / V4L2 camera (or a video file) through OpenCV, an optional extra
    SimCamera       a camera of a MuJoCo scene, rendered offscreen at a frame rate (emulated
                    deployment)
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


class GrabbingCamera:
    """A camera whose frames arrive in a thread of its own, as a real sensor's do.

    `read` returns the newest frame without waiting (the first: up to `timeout` after
    opening) and fails when none came for longer than `timeout`. A control loop faster than
    the camera gets the same frame twice, and the loop's tick never pays for capturing or
    drawing a picture. Subclasses give `_grab`, and may give `_setup` / `_teardown` (run
    in the grabbing thread: resources that belong to one thread, such as a GL context) and
    `_convert` (run by `read`, on the newest frame).
    """

    def __init__(self, name: str, timeout: float):
        self.name, self.timeout = name, timeout
        self._cond = threading.Condition()
        self._frame: Any = None  # newest frame as grabbed
        self._stamp = time.monotonic()  # when the newest frame arrived [s]
        self._error: Exception | None = None  # what stopped the grabbing thread
        self._open_error: Exception | None = None  # what `_setup` raised
        self._closed = False
        self._ready = threading.Event()  # `_setup` has run
        self._thread = threading.Thread(target=self._run, name=f"camera {self.name}", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._open_error is not None:  # opening failed: say so now, not at the first read
            self._thread.join()
            error = self._open_error
            raise CameraError(self.name, f"cannot open ({type(error).__name__}: {error})") from error

    def _setup(self) -> None: ...

    def _grab(self) -> Any:
        """The next frame, or None where none came (tried again 10 ms later)."""
        raise NotImplementedError

    def _teardown(self) -> None: ...

    def _convert(self, frame: Any) -> np.ndarray:
        return frame

    def _run(self) -> None:
        try:
            self._setup()
        except Exception as e:  # reported by the constructor
            self._open_error = self._error = e
        self._ready.set()
        try:
            while self._error is None and not self._closed:
                frame = self._grab()
                if frame is None:
                    time.sleep(0.01)  # unplugged, or a file at its end: try again, without spinning
                    continue
                with self._cond:
                    self._frame, self._stamp = frame, time.monotonic()
                    self._cond.notify_all()
        except Exception as e:  # a driver's own error types: reported by the next read
            with self._cond:
                self._error = e
                self._cond.notify_all()
        finally:
            self._teardown()

    def read(self) -> np.ndarray:
        with self._cond:
            self._cond.wait_for(lambda: self._frame is not None or self._error is not None, timeout=self.timeout)
            frame, age, error = self._frame, time.monotonic() - self._stamp, self._error
        if error is not None:
            raise CameraError(self.name, f"stopped ({type(error).__name__}: {error})") from error
        if frame is None:
            raise CameraError(self.name, f"no frame within {self.timeout:g} s of opening")
        if age > self.timeout:
            raise CameraError(self.name, f"no new frame for {age:.2f} s (timeout {self.timeout:g} s): unplugged or "
                                         "stalled")
        return self._convert(frame)

    def close(self) -> None:
        self._closed = True
        self._thread.join()


class OpenCVCamera(GrabbingCamera):
    """A camera through OpenCV (`cv2.VideoCapture` by index or path), frames resized to
    `size` = (height, width) [px], RGB.

    Grabbed continuously (`GrabbingCamera`): OpenCV queues frames, and reading on demand at
    a control rate slower than the camera's returns pictures several ticks old. A camera
    slower than the control rate gives the same frame twice, which a real sensor's noise
    tells apart from a freeze.

    Args:
        source: device index or path (a video file plays once, as fast as it decodes).
        size: (height, width) of the frames returned [px].
        name: the camera's name in the robot spec.
        timeout: no new frame for this long [s] (the first one: since opening) is a fault.
    """

    def __init__(self, source: int | str, size: tuple[int, int], name: str = "", timeout: float = 1.0):
        name = name or str(source)
        try:
            import cv2
        except ImportError as e:
            raise CameraError(name, f"reading cameras needs OpenCV, which is not installed: {OPENCV_HINT}") from e
        self._cv2, self.size = cv2, size
        self.capture = cv2.VideoCapture(source)
        if not self.capture.isOpened():
            raise CameraError(name, f"cannot open {source!r}; check the device index or path (ls /dev/video*) "
                                    "and that no other program holds it")
        super().__init__(name, timeout)

    def _grab(self) -> np.ndarray | None:
        ok, frame = self.capture.read()  # BGR
        return frame if ok else None

    def _teardown(self) -> None:
        self.capture.release()

    def _convert(self, frame: np.ndarray) -> np.ndarray:
        h, w = self.size
        if frame.shape[:2] != (h, w):
            frame = self._cv2.resize(frame, (w, h), interpolation=self._cv2.INTER_AREA)
        return np.ascontiguousarray(frame[:, :, ::-1])


class SimCamera(GrabbingCamera):
    """A camera of a MuJoCo scene, rendered offscreen at `size` = (height, width) [px] and
    `fps` frames per second.

    Drawn in the camera's own thread, like a real camera's frames (`GrabbingCamera`): a
    rehearsal whose control thread rendered every tick spent most of a 50 Hz tick drawing
    two pictures on a CPU, which a deployment with real cameras never does. The emulated
    servo chain steps the same scene in its own thread, so the scene is copied for
    rendering under that chain's `lock`; the picture itself is drawn outside it.
    """

    noiseless = True

    def __init__(self, scene: Any, name: str, size: tuple[int, int], lock: Any, fps: float = 30.0,
                 timeout: float = 1.0):
        self.scene, self.size, self.lock, self.period = scene, size, lock, 1.0 / fps
        self._next = time.monotonic()
        super().__init__(name, timeout)

    def _setup(self) -> None:
        import mujoco

        if mujoco.mj_name2id(self.scene.model, int(mujoco.mjtObj.mjOBJ_CAMERA), self.name) < 0:
            raise ValueError(f"the scene has no camera {self.name!r}")
        self._renderer = mujoco.Renderer(self.scene.model, *self.size)  # its GL context belongs to this thread

    def _grab(self) -> np.ndarray:
        time.sleep(max(0.0, self._next - time.monotonic()))
        self._next = max(self._next + self.period, time.monotonic())
        with self.lock:
            self._renderer.update_scene(self.scene.data, self.name)
        return self._renderer.render()

    def _teardown(self) -> None:
        if hasattr(self, "_renderer"):
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
