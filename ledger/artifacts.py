"""Model artifacts stored content-addressed in the database, verified on every load."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any, cast

import sqlalchemy as sa

from ledger.errors import ArtifactCorrupt, NotFound, UntrustedArtifact

metadata = sa.MetaData()
artifacts_table = sa.Table(
    "ledger_artifacts",
    metadata,
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("media_type", sa.String(64), nullable=False),
    sa.Column("content", sa.LargeBinary, nullable=False),
)


# Types that our trainers' own artifacts hold and skops does not trust by default:
# numpy.dtype (every fitted SimpleImputer keeps one) and tree node storage (forests,
# gradient boosting, the IsolationForest outlier detectors). skops distrusts trees
# because a crafted file can crash predict; a stored artifact was either fitted by
# our trainers or passed the strict upload check (loads_skops with no list), and its
# digest proves the bytes are the ones recorded, so loading from the store trusts them.
# An uploaded file may hold a dtype (every fitted SimpleImputer does): building one runs no
# code. Tree arrays stay refused for uploads: a crafted one can crash predict.
UPLOAD_TRUSTED_TYPES = ("numpy.dtype",)

CAPTURED_TRUSTED_TYPES = (
    "numpy.dtype",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
)


# Every event that rests on a stored artifact names it under this key, at any depth of its
# state (a model's bytes, a training run's outlier detector and explanation background):
# a clone finds what to copy by this key alone, whatever kind of artifact it is.
REFERENCE_KEY = "artifact_digest"


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def referenced_digests(state: Any) -> set[str]:
    """The artifact digests an event's decoded state names under REFERENCE_KEY, at any depth."""
    found: set[str] = set()
    pending = [state]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            digest = value.get(REFERENCE_KEY)
            if isinstance(digest, str):
                found.add(digest)
            pending.extend(value.values())
        elif isinstance(value, list | tuple):
            pending.extend(value)
    return found


class ArtifactStore:
    """Blobs by sha256; deserialised models cached by digest within a byte budget."""

    def __init__(self, engine: sa.Engine, cache_bytes: int = 512 * 1024 * 1024):
        self.engine = engine
        self.cache_bytes = cache_bytes
        self._cache: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._cached_bytes = 0
        self._lock = threading.Lock()

    def create_table(self) -> None:
        metadata.create_all(self.engine, checkfirst=True)

    def put(self, content: bytes, media_type: str = "application/x-skops") -> str:
        digest = sha256(content)
        with self.engine.begin() as conn:
            exists = conn.execute(
                sa.select(artifacts_table.c.digest).where(artifacts_table.c.digest == digest)
            ).first()
            if not exists:
                conn.execute(
                    artifacts_table.insert().values(
                        digest=digest, size=len(content), media_type=media_type, content=content
                    )
                )
        return digest

    def exists(self, digest: str) -> bool:
        with self.engine.connect() as conn:
            return (
                conn.execute(
                    sa.select(artifacts_table.c.digest).where(artifacts_table.c.digest == digest)
                ).first()
                is not None
            )

    def get(self, digest: str) -> bytes:
        """The artifact's bytes, refused if they no longer hash to their name."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(artifacts_table.c.content).where(artifacts_table.c.digest == digest)
            ).first()
        if row is None:
            raise NotFound(f"no artifact with digest {digest}")
        content = bytes(row[0])
        if sha256(content) != digest:
            raise ArtifactCorrupt(f"artifact {digest} does not hash to its digest: it was altered")
        return content

    def load_model(self, digest: str, trusted: list[str] | None = None) -> Any:
        """The deserialised model, from the cache or verified storage (see CAPTURED_TRUSTED_TYPES)."""
        with self._lock:
            if digest in self._cache:
                self._cache.move_to_end(digest)
                return self._cache[digest][0]
        content = self.get(digest)
        model = loads_skops(
            content, trusted=list(CAPTURED_TRUSTED_TYPES if trusted is None else trusted)
        )
        with self._lock:
            self._cache[digest] = (model, len(content))
            self._cached_bytes += len(content)
            while self._cached_bytes > self.cache_bytes and len(self._cache) > 1:
                _, (_, size) = self._cache.popitem(last=False)
                self._cached_bytes -= size
        return model


def loads_skops(content: bytes, trusted: list[str] | None = None) -> Any:
    """Load a skops file, refusing types that skops does not trust by default."""
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(data=content)
    except Exception as error:
        raise UntrustedArtifact(f"not a readable skops file: {error}") from error
    refused = sorted(set(untrusted) - set(trusted or []))
    if refused:
        raise UntrustedArtifact(
            f"the model uses types skops does not trust: {', '.join(refused)}", types=refused
        )
    return sio.loads(content, trusted=trusted or [])


def dumps_skops(model: Any) -> bytes:
    import skops.io as sio

    return cast(bytes, sio.dumps(model))  # skops ships no type hints
