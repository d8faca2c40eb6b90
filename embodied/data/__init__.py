"""Demonstration data: episodes, the zarr episode store, collection, LeRobot interop, loaders."""

from embodied.data.episode import Episode
from embodied.data.store import EpisodeStore, open_robot_store

__all__ = ["Episode", "EpisodeStore", "open_robot_store"]
