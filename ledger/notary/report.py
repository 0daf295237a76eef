"""What a verification found: counts, the first problem, digest checks, a printable report.

The verdict says what was proven, never more: "ok" needs a comparison with something the
events could not have rewritten along with themselves (the notary's chain table, a signed
digest); a stream that was only found consistent with itself is "unproven".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ledger.notary.chain import GENESIS
from ledger.notary.signing import Digest

MAX_LISTED_PROBLEMS = 100
# Exit statuses of `ledger verify` (2 is a refused input): the verdict, as a script reads it.
EXIT_CODES = {"ok": 0, "tampered": 1, "unproven": 3}
UNPROVEN_LINE = (
    "chain consistent; NOT compared with any signed digest "
    "(give --digest FILE --pubkey FILE to prove it was not rewritten)"
)
KIND_TITLES = {
    "changed": "event changed",
    "reordered": "events reordered",
    "removed": "event removed",
    "inserted": "event inserted",
    "chain_altered": "notary chain altered",
    "clock_regressed": "recorded-at out of order",
    "out_of_order": "positions out of order in the stream",
    "malformed": "unreadable event in the stream",
    "digest_mismatch": "signed head does not match",
    "digest_signature": "digest signature invalid",
    "digest_key": "digest key not trusted",
    "digest_key_retired": "digest signed by a retired key",
    "digest_not_covered": "digest not covered by the events",
}


@dataclass
class Problem:
    """One finding at one ledger position."""

    kind: str
    position: int
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "position": self.position, "detail": self.detail}


@dataclass
class DigestCheck:
    position: int
    key_id: str
    issued_at: str
    ok: bool
    detail: str


class Mismatch(NamedTuple):
    """A position whose stored event hashes other than the event the notary chained there."""

    found: bytes  # the stored event's content hash
    recorded: bytes  # the content hash in the notary's row


@dataclass
class VerificationReport:
    """The verdict: ok only if something was compared and every event, row and digest held."""

    chain_compared: bool = False
    key_pinned: bool = False  # digests were checked against pinned keys, not recorded ones
    events: int = 0
    chained: int = 0
    unchained: int = 0
    head_position: int = 0
    head_hash: bytes = GENESIS
    problems: list[Problem] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    digests: list[DigestCheck] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    mismatches: dict[int, Mismatch] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"

    @property
    def verdict(self) -> str:
        """tampered: a problem found; unproven: nothing but the events' own order compared."""
        if self.counts:
            return "tampered"
        return "ok" if self.chain_compared or self.digests else "unproven"

    def exit_code(self, chain_only: bool = False) -> int:
        """0 when everything asked for held; a chain-only check asks for no comparison."""
        if chain_only and self.verdict == "unproven":
            return 0
        return EXIT_CODES[self.verdict]

    def compared(self) -> str:
        """What the recomputed chain was held against, in words."""
        against = []
        if self.chain_compared:
            against.append("the notary's chain table")
        if self.digests:
            positions = ", ".join(str(d.position) for d in self.digests)
            which = (
                "the signed digest at position"
                if len(self.digests) == 1
                else "the signed digests at positions"
            )
            key = (
                "pinned public keys"
                if self.key_pinned
                else "the keys the ledger itself records (no pinned key: give --pubkey FILE)"
            )
            against.append(f"{which} {positions}, checked with {key}")
        return " and ".join(against)

    def proved(self, chain_only: bool = False) -> str:
        """The last line: what the verdict rests on, and what it does not cover."""
        compared = self.compared()
        if self.verdict == "tampered":
            first = self.first_problem
            where = f" (first problem at position {first.position})" if first else ""
            return f"TAMPERED{where}: compared {compared or 'the events with themselves'}"
        if not compared:
            if chain_only:
                return (
                    "chain consistent (a chain-only check, as asked): positions increase and "
                    "recorded-at never steps back; NOT compared with any notary table or "
                    "signed digest"
                )
            return UNPROVEN_LINE
        if not self.digests:
            return (
                f"OK: compared with {compared} only; NOT with any signed digest "
                "(give --digest FILE --pubkey FILE to prove the table was not rewritten too)"
            )
        return f"OK: compared with {compared}"

    @property
    def first_problem(self) -> Problem | None:
        return min(self.problems, key=lambda p: p.position) if self.problems else None

    def add(self, kind: str, position: int, detail: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if len(self.problems) < MAX_LISTED_PROBLEMS:
            self.problems.append(Problem(kind, position, detail))

    def reclassify(self, problem: Problem, kind: str, detail: str) -> None:
        self.counts[problem.kind] -= 1
        if not self.counts[problem.kind]:
            del self.counts[problem.kind]
        self.counts[kind] = self.counts.get(kind, 0) + 1
        problem.kind, problem.detail = kind, detail

    def record_digest(self, digest: Digest, failure: Problem | None) -> None:
        if failure is not None and failure.kind == "digest_mismatch":
            failure.detail += self._bracket(failure.position)
        self.digests.append(
            DigestCheck(
                digest.position,
                digest.key_id,
                digest.issued_at,
                failure is None,
                failure.detail if failure else "verified",
            )
        )
        if failure is not None:
            self.add(failure.kind, failure.position, failure.detail)

    def _bracket(self, position: int) -> str:
        # Without chain rows a digest only bounds the change: after the last digest that held.
        good = [d.position for d in self.digests if d.ok and d.position < position]
        low = max(good) + 1 if good else 1
        return f"; the first change lies in positions {low}..{position}"

    def to_dict(self, chain_only: bool = False) -> dict[str, Any]:
        first = self.first_problem
        return {
            "ok": self.ok,
            "verdict": self.verdict,
            "proved": self.proved(chain_only),
            "events": self.events,
            "head_position": self.head_position,
            "head_hash": self.head_hash.hex(),
            "chain_compared": self.chain_compared,
            "key_pinned": self.key_pinned,
            "chained": self.chained,
            "unchained": self.unchained,
            "counts": dict(self.counts),
            "first_problem": first.to_dict() if first else None,
            "problems": [p.to_dict() for p in sorted(self.problems, key=lambda p: p.position)],
            "digests": [vars(d) for d in self.digests],
            "warnings": list(self.warnings),
        }

    def render(self, chain_only: bool = False) -> str:
        """A report a person reads: the verdict first, then where and why, then what it rests on."""
        word = {"ok": "OK", "tampered": "TAMPERED", "unproven": "CHAIN CONSISTENT"}[self.verdict]
        lines = [
            f"{word}: {self.events} events, head at position "
            f"{self.head_position} ({self.head_hash.hex()})"
        ]
        if self.chain_compared:
            lines.append(
                f"notary chain: {self.chained} rows compared, {self.unchained} events not yet chained"
            )
        else:
            lines.append("notary chain: not compared (events only)")
        first = self.first_problem
        if first is not None:
            lines.append(
                f"FIRST PROBLEM at position {first.position}: {KIND_TITLES.get(first.kind, first.kind)}"
                f" — {first.detail}"
            )
            lines.append("counts: " + ", ".join(f"{k}={v}" for k, v in sorted(self.counts.items())))
            lines += [
                f"  {p.position}: {p.kind}: {p.detail}"
                for p in sorted(self.problems, key=lambda p: p.position)[:20]
            ]
        for check in self.digests:
            lines.append(
                f"digest at position {check.position} (key {check.key_id}, issued {check.issued_at}): "
                f"{'verified' if check.ok else 'FAILED: ' + check.detail}"
            )
        lines += [f"warning: {w}" for w in self.warnings]
        lines.append(self.proved(chain_only))
        return "\n".join(lines)
