"""The body of a prediction request: one row or a batch, and its request id."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from ledger import values
from serving.fields import Text


def request_id_field(**kwargs: Any) -> Text:
    """A request id: 1 to 200 characters the ledger can store."""
    return Text(max_length=values.ID_MAX, **kwargs)


class Rows(fields.List[dict[str, Any]]):
    """A list of JSON objects; a batch of well-formed rows skips the per-row field machinery.

    Only when some row is not an object with string keys does the list go through
    `List(Dict(keys=String()))`, whose error answer is then the one given.
    """

    def __init__(self, **kwargs: Any):
        super().__init__(fields.Dict(keys=fields.String()), **kwargs)

    def _deserialize(
        self, value: Any, attr: Any, data: Any, **kwargs: Any
    ) -> list[dict[str, Any] | None]:
        if type(value) is list and all(
            type(row) is dict and all(type(k) is str for k in row) for row in value
        ):
            return [dict(row) for row in value]  # copies, as Dict would make
        return super()._deserialize(value, attr, data, **kwargs)


class PredictionRequestSchema(Schema):
    """`{"features": {...}, "request_id": ...}` or `{"instances": [{...}], "request_id": ...}`.

    A well-formed single row skips marshmallow's schema machinery (`one_row`); anything else,
    and every error answer, is marshmallow's own.
    """

    class Meta:
        unknown = RAISE

    request_id = request_id_field(required=True)
    features = fields.Dict(keys=fields.String())
    instances = Rows(validate=validate.Length(min=1))
    occurred_at = fields.String(
        metadata={
            "description": "RFC 3339 instant the request occurred at, for loading history: "
            "only keys granted `<deployment>:load-history`, only an instant that has passed "
            "(else 403 / 422); recorded-at stays the ledger's",
            "example": "2026-03-03T12:00:00Z",
        }
    )

    @validates_schema
    def check_one_shape(self, data: dict, **_: object) -> None:
        if ("features" in data) == ("instances" in data):
            raise ValidationError(
                "send either features (one row) or instances (a batch)", "features"
            )

    def load(
        self, data: Any, *, many: bool | None = None, partial: Any = None, unknown: Any = None
    ) -> Any:
        if not (many or self.many) and partial is None and unknown is None:
            loaded = self.one_row(data)
            if loaded is not None:
                return loaded
        return super().load(data, many=many, partial=partial, unknown=unknown)

    def one_row(self, data: Any) -> dict[str, Any] | None:
        """A `{"request_id", "features"}` body as marshmallow loads it, or None to let it answer.

        The request id goes through its own field; the features are what `Dict(keys=String())`
        makes of an object whose keys are all strings: a copy.
        """
        if type(data) is not dict or data.keys() != ONE_ROW:
            return None
        features = data["features"]
        if type(features) is not dict or not all(type(k) is str for k in features):
            return None
        try:
            request_id = self.fields["request_id"].deserialize(
                data["request_id"], "request_id", data
            )
        except ValidationError:
            return None
        return {"request_id": request_id, "features": dict(features)}


ONE_ROW = frozenset(("request_id", "features"))
