"""marshmallow schemas of the JSON API's inputs."""

from __future__ import annotations

from marshmallow import RAISE, Schema

from api.params import Hash, StrictInt


class InclusionQuery(Schema):
    class Meta:
        unknown = RAISE

    leaf_index = StrictInt(load_default=None)
    leaf_hash = Hash(load_default=None)
    tree_size = StrictInt(load_default=None)


class ConsistencyQuery(Schema):
    class Meta:
        unknown = RAISE

    first = StrictInt(required=True)
    second = StrictInt(load_default=None)
