"""Resumable uploads (tus 1.0): the protocol's flows and its routes."""
