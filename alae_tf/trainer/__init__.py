"""The training run as a library object (what alae-train calls)."""
