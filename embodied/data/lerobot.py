"""LeRobot v3.0 compatibility: export a store, import a dataset, read one in place.

    export_lerobot(store, out)            EpisodeStore -> LeRobot v3.0 folder (parquet + H.264 mp4)
    import_lerobot(src, out, robot=None)  LeRobot v3.0 folder -> new EpisodeStore
    LeRobotSource(src)                    FrameSource over a LeRobot v3.0 folder (no copy)

Keys are the same on both sides (observation.state, action, observation.images.<camera>),
so the mapping is one of containers, not of meaning. Only codebase_version v3.0 is read;
older datasets raise UnsupportedFormat with the conversion command. The layout is described
in `embodied.data.lerobot_format`.
"""

from embodied.data.lerobot_export import ExportReport, export_lerobot
from embodied.data.lerobot_import import ImportReport, import_lerobot
from embodied.data.lerobot_reader import LeRobotSource

__all__ = ["ExportReport", "ImportReport", "LeRobotSource", "export_lerobot", "import_lerobot"]
