"""Upstream video providers behind one protocol."""
