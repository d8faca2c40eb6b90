"""firmware_bridge runs on a small robot computer: it never pulls in mujoco, sim_scenes or torch."""

import subprocess
import sys

CODE = """
import pkgutil, importlib, sys
import firmware_bridge
for info in pkgutil.walk_packages(firmware_bridge.__path__, "firmware_bridge."):
    importlib.import_module(info.name)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("mujoco", "sim_scenes", "torch"))
print(",".join(heavy))
"""


def test_firmware_bridge_imports_nothing_heavy():
    result = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"firmware_bridge imported {result.stdout.strip()}"
