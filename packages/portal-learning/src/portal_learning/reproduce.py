"""``portal-learning reproduce``: the paper's out-of-family claims arrive with the encoders, ERM and meta-learning."""

from __future__ import annotations

AVAILABLE_IN = "0.2.0"
"""The release that brings ``portal-learning reproduce``."""
