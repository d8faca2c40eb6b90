"""Hypothesis settings for the bridge tests: no example database or cache in the work tree."""

import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir

set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "embodied-hypothesis")
settings.register_profile("firmware_bridge", database=None, deadline=None, max_examples=100)
settings.load_profile("firmware_bridge")
