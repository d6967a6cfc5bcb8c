"""The bus package exports a chosen set of names, each defined in a bus module."""

from __future__ import annotations

from podium import bus


def test_all_names_are_exported_and_defined_in_bus() -> None:
    for name in bus.__all__:
        value = getattr(bus, name)
        assert getattr(value, "__module__", "").startswith("podium.bus."), name
    assert {"StreamBus", "Consumer", "Delivery", "Handler", "DeadLetter"} <= set(bus.__all__)
