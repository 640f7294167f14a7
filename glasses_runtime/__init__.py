"""glasses_runtime: the on-device perception runtime (camera/mic loop, inference, memory, planner)."""

__version__ = "0.1.0"
