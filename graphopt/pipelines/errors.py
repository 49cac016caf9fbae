"""Errors of the pipeline store; each is a GraphoptError, so the CLI prints one line and exits 2."""

from __future__ import annotations

from graphopt.errors import GraphoptError, InputError


class PipelineError(GraphoptError):
    """Base of every pipeline-store error a user can act on."""


class RepoNotFoundError(PipelineError):
    """No repository here (run `graphopt pipeline init`), or it is not one."""


class UnknownBranchError(PipelineError):
    """A branch name that the repository does not hold."""


class UnknownComponentError(PipelineError):
    """A component name that is not in the pipeline."""


class SchemaConflictError(PipelineError):
    """An upstream output schema changed and a downstream component cannot take it."""


class ComponentRunError(PipelineError):
    """A component raised or exited non-zero while running."""


class MissingObjectError(PipelineError):
    """An object id is referenced but not stored."""


class CorruptObjectError(PipelineError):
    """A stored object's bytes no longer hash to its name."""


class FsckError(PipelineError):
    """fsck found problems (they were listed before this error)."""


class BadNameError(PipelineError, InputError):
    """A component, branch, area or file name that cannot safely become a path (see names.py)."""


class StagedChangedError(PipelineError):
    """The staged changes a commit took were re-staged or committed by another process meanwhile."""


class HeadMovedError(PipelineError):
    """Another commit landed on the branch while this one ran (commit rebuilds on it; merge refuses)."""
