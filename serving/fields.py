"""marshmallow's side of ledger.values: fields and a validator for bodies that are recorded."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate

from ledger import values


class Text(fields.String):
    """A string the ledger can store: no NUL, no lone surrogate, min..max_length characters."""

    default_error_messages = {"unstorable": "The text {why}."}

    def __init__(
        self, *, max_length: int = values.TEXT_MAX, min_length: int = 1, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.max_length = max_length
        self.validators.append(validate.Length(min_length, max_length))  # the spec shows it

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        why = values.text_fault(text, self.max_length)
        if why is not None:
            raise self.make_error("unstorable", why=why)
        return text


class Storable(validate.Validator):
    """Refuses a free-form JSON value holding anything ledger.values does not store."""

    def __init__(self, max_text: int = values.TEXT_MAX) -> None:
        self.max_text = max_text

    def __call__(self, value: Any) -> Any:
        fault = values.json_fault(value, self.max_text)
        if fault is not None:
            path, why = fault
            raise ValidationError(f"{path} {why}." if path else f"The value {why}.")
        return value
