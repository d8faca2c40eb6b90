"""Stage records: a stage's result as JSON with the key it was computed under, so a rerun
of the demo reuses what still holds and redoes the rest."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any


def read_record(path: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    """The result stored at `path` when it was computed under `key`, else None."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record.get("result") if record.get("key") == _plain(key) else None


def write_record(path: Path, key: dict[str, Any], result: dict[str, Any], detail: Any = None) -> None:
    """Write {key, result, detail} atomically (a crash leaves the previous record or none)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"key": _plain(key), "result": result, "detail": detail}, indent=2))
    os.replace(tmp, path)


def _plain(value: Any) -> Any:
    """`value` as it reads back from JSON (tuples become lists), for key comparison."""
    return json.loads(json.dumps(value))


def fields(result: Any) -> dict[str, Any]:
    """A stage result's fields for its record (without `skipped`, which describes one run)."""
    d = asdict(result)
    d.pop("skipped")
    return d
