"""marshmallow 4 schemas for every request and answer body (also the OpenAPI source)."""
