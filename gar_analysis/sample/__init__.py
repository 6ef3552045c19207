"""The seeded sample generator (``gar-analysis sample``): a complete data directory and its planted truth."""
from .generator import build_frames, generate, uai_letter, write_frames

__all__ = ["build_frames", "generate", "uai_letter", "write_frames"]
