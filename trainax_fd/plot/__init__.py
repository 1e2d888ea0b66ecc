"""Matplotlib figures: space-time diagrams and 2D snapshots."""

from ._fields import snapshot as snapshot, spacetime as spacetime
