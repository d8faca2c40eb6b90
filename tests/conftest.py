"""Shared fixtures. MUJOCO_GL must be set before anything imports mujoco."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import re  # noqa: E402
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable  # noqa: E402

import pytest  # noqa: E402

import robots  # noqa: E402  (imports no mujoco)

ROBOTS_DIR = Path(robots.__file__).resolve().parent


def copy_robot(dest_parent: Path, name: str, source: str = "so100",
               toml_edit: Callable[[str], str] | None = None,
               xml_edit: Callable[[str], str] | None = None) -> Path:
    """Copy robots/<source> to dest_parent/<name>, renaming the robot and applying edits to
    the robot.toml text and the MJCF text. Returns the new folder."""
    folder = dest_parent / name
    shutil.copytree(ROBOTS_DIR / source, folder)
    toml = folder / "robot.toml"
    text = re.sub(r'^name = ".*"$', f'name = "{name}"', toml.read_text(), count=1, flags=re.M)
    if toml_edit is not None:
        new = toml_edit(text)
        assert new != text, "toml edit changed nothing"
        text = new
    toml.write_text(text)
    if xml_edit is not None:
        xml = folder / f"{source}.xml"
        old = xml.read_text()
        new = xml_edit(old)
        assert new != old, "xml edit changed nothing"
        xml.write_text(new)
    return folder


@pytest.fixture
def make_robot(tmp_path) -> Callable[..., Path]:
    """Factory: make_robot(name, source="so100", parent=tmp_path, toml_edit=..., xml_edit=...) -> folder."""

    def make(name: str = "myarm", source: str = "so100", parent: Path | None = None, **edits) -> Path:
        return copy_robot(parent or tmp_path, name, source, **edits)

    return make
