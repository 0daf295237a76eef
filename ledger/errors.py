"""One error tree for everything the ledger refuses; the API maps each class once."""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every refusal: a stable `code` and a message a person can act on."""

    code = "ledger_error"

    def __init__(self, detail: str, *, field: str | None = None, **extra: object):
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.extra = extra


class NotFound(LedgerError):
    code = "not_found"


class AlreadyExists(LedgerError):
    code = "already_exists"


class Conflict(LedgerError):
    """The command contradicts recorded state (e.g. a request id reused with another body)."""

    code = "conflict"


class OutcomeIdReused(Conflict):
    """An outcome id sent again with another body: a correction needs a new id."""

    code = "outcome_id_reused"


class StaleVersion(LedgerError):
    """The caller acted on a version that is no longer current."""

    code = "stale_version"


class InvalidCommand(LedgerError):
    """The command is well formed but not allowed (422)."""

    code = "invalid"


class TooLarge(LedgerError):
    """More than a configured cap allows (413): the message says the cap."""

    code = "too_large"


class SchemaMismatch(Conflict):
    code = "schema_mismatch"


class NotAuthorized(LedgerError):
    code = "not_authorized"


class StorageUnavailable(LedgerError):
    code = "storage_unavailable"


class ArtifactCorrupt(LedgerError):
    code = "artifact_corrupt"


class EventUnreadable(LedgerError):
    """A stored event no longer decodes into its aggregate (ledger/repository.py)."""

    code = "event_unreadable"


class UntrustedArtifact(LedgerError):
    code = "untrusted_artifact"


class InvalidSetting(LedgerError):
    """A configuration variable's value is malformed: the message names the variable."""

    code = "invalid_setting"
