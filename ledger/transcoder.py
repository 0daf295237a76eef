"""A JSON transcoder on orjson that writes and reads what eventsourcing's JSONTranscoder does.

Encoding a prediction with the standard library's encoder costs about 23 µs under the
GIL; orjson does it in a few. Stored bytes stay readable by the plain JSONTranscoder (a
registered type is still `{"_type_": name, "_data_": ...}`), and every event stored
before this class existed still decodes: anything orjson would write differently is
handed to the standard library encoder, and anything it cannot read alone to the
standard decoder.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import orjson
from eventsourcing.persistence import JSONTranscoder, TranscodingNotRegisteredError

from ledger import values
from ledger.values import Unstorable

TYPED = b'"_type_"'
NUL = b"\\u0000"  # how JSON writes U+0000
OPTIONS = (
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATACLASS
)


class OrjsonTranscoder(JSONTranscoder):
    """JSONTranscoder's format at orjson's speed, falling back to it where they differ."""

    def encode(self, obj: Any) -> bytes:
        """The stored bytes; a text the ledger cannot store (ledger.values) is refused here,
        whichever path it came by, rather than left to stop PostgreSQL's jsonb reads later."""
        return self._stored(obj, self._encode)

    def encode_alike(self, obj: Any) -> bytes:
        """encode() of a state its caller has already found written alike (`orjson_writes_alike`).

        A batch checks its states a column at a time (the row schema admits finite numbers
        only; the model outputs are checked together), so no row walks its leaves again.
        """
        return self._stored(obj, self._dumps)

    def encode_alike_many(self, states: Sequence[dict[str, Any]]) -> list[bytes]:
        """[encode_alike(s) for s in states], from one orjson call over the list.

        Each call's output buffer is fresh heap: encoding a batch state by state touches
        a couple of new memory pages a row, and faulting them in costs more than the
        encoding. The list's JSON is its elements' JSON joined by commas, so each state's
        bytes are a slice of it, cut where the next state begins: states whose first member
        is the same (a batch's shared timestamp) are cut at that member. A cut that cannot
        be trusted (the same bytes met again inside a state) finds more cuts than states,
        and then each is encoded alone.
        """
        if not _lead_alike(states):
            return [self.encode_alike(s) for s in states]
        try:
            data: bytes = orjson.dumps(states, default=self._orjson_default, option=OPTIONS)
            first = orjson.dumps(
                dict([next(iter(states[0].items()))]), default=self._orjson_default, option=OPTIONS
            )
        except TypeError:  # json decides for some state, or refuses a text: each alone says which
            return [self.encode_alike(s) for s in states]
        if NUL in data:  # refused, or stored as the standard encoder would: each alone decides
            return [self.encode_alike(s) for s in states]
        cut = b"}," + first[:-1]  # a state's end, then the next state's first member
        encoded, start, find = [], 1, data.find
        while (end := find(cut, start)) >= 0:
            encoded.append(data[start : end + 1])
            start = end + 2
        encoded.append(data[start:-1])
        if len(encoded) != len(states):
            return [self.encode_alike(s) for s in states]
        return encoded

    def typed(self, o: Any) -> Any:
        """A registered type's value as the stored JSON holds it (`{"_type_": ..., "_data_": ...}`):
        a value shared by many states is converted once and placed in each."""
        return self._orjson_default(o)

    def _stored(self, obj: Any, encode: Any) -> bytes:
        try:
            data: bytes = encode(obj)
        except UnicodeEncodeError:
            raise Unstorable("a text holds a lone surrogate, which is not UTF-8") from None
        if NUL in data:
            values.refuse_escaped_nul(data)
        return data

    def _encode(self, obj: Any) -> bytes:
        if not orjson_writes_alike(obj):
            return super().encode(obj)  # NaN, UUIDs, non-string keys: the standard way
        return self._dumps(obj)

    def _dumps(self, obj: Any) -> bytes:
        try:
            return orjson.dumps(obj, default=self._orjson_default, option=OPTIONS)
        except TypeError:  # a subclass, a non-string key, an unregistered type: json decides
            return super().encode(obj)

    def _orjson_default(self, o: Any) -> Any:
        transcoding = self.types.get(type(o))
        if transcoding is not None:
            return {"_type_": transcoding.name, "_data_": transcoding.encode(o)}
        if isinstance(o, str | int | float) and not isinstance(o, bool):
            raise _Differs  # a subclass (np.float64, an enum): let json decide, as before
        raise TranscodingNotRegisteredError(f"Object of type {type(o)} is not serializable")

    def decode(self, data: bytes) -> Any:
        if TYPED in data:
            return self._decode_typed(data)
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            return super().decode(data)  # NaN and Infinity, which json writes and orjson refuses

    def _decode_typed(self, data: bytes) -> Any:
        # Typical events hold their typed values (a timestamp) at the top level only.
        try:
            state = orjson.loads(data)
        except orjson.JSONDecodeError:
            return super().decode(data)
        if not isinstance(state, dict):
            return super().decode(data)
        typed = 0
        for key, value in state.items():
            if isinstance(value, dict) and "_type_" in value:
                state[key] = self._decode_obj(value)
                typed += 1
        return state if typed == data.count(TYPED) else super().decode(data)


def _lead_alike(states: Sequence[Any]) -> bool:
    """Whether there are several states, dicts whose first member is the same key and object."""
    if len(states) < 2 or type(states[0]) is not dict or not states[0]:
        return False
    key = next(iter(states[0]))
    value = states[0][key]
    return all(type(s) is dict and next(iter(s), None) == key and s[key] is value for s in states)


class _Differs(Exception):
    """orjson would write this value differently from the standard encoder."""


def orjson_writes_alike(obj: Any) -> bool:
    """Whether orjson would write `obj` as the standard encoder does (no NaN, no UUID).

    Non-string keys need no check: orjson refuses them, and encode() falls back.
    """
    if type(obj) is dict:
        values: Any = obj.values()
    elif type(obj) is list or type(obj) is tuple:
        values = obj
    else:
        return _leaf_alike(obj)
    for v in values:  # leaves inline: a call per leaf would cost more than orjson saves
        kind = type(v)
        if kind is str or kind is int or kind is bool or v is None:
            continue
        if kind is float:
            if v - v != 0.0:  # NaN and ±infinity, which orjson writes as null
                return False
        elif not orjson_writes_alike(v):
            return False
    return True


def _leaf_alike(v: Any) -> bool:
    if type(v) is float:
        return v - v == 0.0
    return type(v) is not uuid.UUID  # other objects reach default(), which handles them
