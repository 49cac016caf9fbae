"""Errors of `graphopt tune`: each is a GraphoptError, so the CLI prints one line and exits 2."""

from __future__ import annotations

from graphopt.errors import GraphoptError


class SpaceError(GraphoptError):
    """A search space file is missing, not YAML, or names/values a knob wrongly."""


class StorageError(GraphoptError):
    """A --storage URL cannot be parsed or opened, or the study is missing or foreign."""


class TuneError(GraphoptError):
    """Bad combination of tune arguments (e.g. the loss objective without --train)."""
