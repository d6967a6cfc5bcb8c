"""``data_part`` builds the very message a2a-sdk's ``new_data_part`` builds, and ``data_of`` reads back what
``MessageToDict`` reads, for every shape a part's data or a message's metadata takes."""

from __future__ import annotations

import math

import pytest
from a2a.helpers.proto_helpers import new_data_part
from google.protobuf import struct_pb2
from google.protobuf.json_format import MessageToDict

from podium.bus.parts import data_of, data_part

VALUES = [
    {},
    [],
    {"event": "step", "step": "s1", "attempt": 1, "ms": 103.25, "ok": True, "why": None},
    {"nested": {"list": [1, [2, [3, {"deep": "é✓"}]], {"k": False}], "empty": {}, "none": [None]}},
    [1, "two", 3.5, None, True, {"k": [{}]}],
    {"big": 1e20, "small": -1e-20, "int": 2**60, "zero": 0, "neg": -7},
    {"unicode key ✓": "value\nwith\tcontrol", "": "empty key"},
    "a bare string",
    42,
    None,
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_the_same_part_as_new_data_part_and_the_same_value_back(value: object) -> None:
    part = data_part(value, "application/json")
    assert part == new_data_part(value, "application/json")
    assert part.SerializeToString(deterministic=True) == new_data_part(
        value, "application/json"
    ).SerializeToString(deterministic=True)
    assert data_of(part.data) == MessageToDict(part.data)
    assert data_part(value).media_type == ""


def test_metadata_structs_and_unusual_numbers_read_as_message_to_dict_reads_them() -> None:
    metadata = struct_pb2.Struct()
    metadata.update({"soakClient": "client1", "n": 3, "inner": {"a": [1, 2]}})
    assert data_of(metadata) == MessageToDict(metadata)
    assert data_of(struct_pb2.Struct()) == {} and data_of(struct_pb2.Value()) is None
    for odd in (struct_pb2.Value(number_value=math.inf), struct_pb2.Value(number_value=math.nan)):
        with pytest.raises(ValueError):
            MessageToDict(odd)
        with pytest.raises(ValueError):  # refused the same way
            data_of(odd)


def test_a_value_json_cannot_hold_is_refused() -> None:
    with pytest.raises(ValueError):
        data_part({"a set": {1, 2}})
