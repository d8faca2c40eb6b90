"""The black box: every monitor and controller event as one JSON line, one file per run,
flushed per event so a crash or a power cut loses at most the line being written.

    box = BlackBox.create("out/blackbox", "so100")   # out/blackbox/so100-20250101-120000-1234.jsonl
    box.write(event)
    for entry in read_blackbox(box.path): print(format_entry(entry))
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from firmware_bridge.monitor.events import Event


class BlackBox:
    """An append-only JSON-lines log.

    Args:
        path: the file (created with its folder; an existing file is appended to).
        meta: written as the first line ({"kind": "run", ...}): robot, profile, start time.
    """

    def __init__(self, path: str | Path, meta: dict[str, Any] | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = self.path.open("a", encoding="utf-8")
        self.lines = 0
        self.write_dict({"t": time.monotonic(), "kind": "run", "what": "opened", "wall_time": time.time(),
                         **(meta or {})})

    @classmethod
    def create(cls, folder: str | Path, robot: str, meta: dict[str, Any] | None = None) -> BlackBox:
        """A new file `<folder>/<robot>-<date>-<time>-<pid>.jsonl` for this run."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return cls(Path(folder) / f"{robot}-{stamp}-{os.getpid()}.jsonl", {"robot": robot, **(meta or {})})

    def write(self, event: Event) -> None:
        self.write_dict(event.to_dict())

    def write_dict(self, entry: dict[str, Any]) -> None:
        if self._file is None:
            return
        self._file.write(json.dumps(entry, separators=(",", ":")) + "\n")
        self._file.flush()
        self.lines += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> BlackBox:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def read_blackbox(path: str | Path) -> list[dict[str, Any]]:
    """Every entry of a black-box file; a torn last line (a crash mid-write) is skipped."""
    entries = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return entries


def format_entry(entry: dict[str, Any], t0: float = 0.0) -> str:
    """One line for a terminal: time since `t0` [s], kind, what, servo/joint, reaction, values."""
    where = f"servo {entry['servo']} ({entry.get('joint', '')})" if "servo" in entry else "bus"
    values = ""
    if "value" in entry:
        values = f" value={entry['value']:g}" + (f" limit={entry['threshold']:g}" if "threshold" in entry else "")
    extra = {k: v for k, v in entry.items()
             if k not in ("t", "kind", "what", "servo", "joint", "reaction", "value", "threshold", "detail")}
    detail = entry.get("detail", "") or (json.dumps(extra) if extra else "")
    reaction = f" -> {entry['reaction']}" if entry.get("reaction") else ""
    return (f"{entry.get('t', 0.0) - t0:9.3f} s  {entry.get('kind', '?'):<15} {entry.get('what', ''):<10} "
            f"{where:<24}{reaction}{values}{'  ' + detail if detail else ''}")
