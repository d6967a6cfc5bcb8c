"""The package's exported names, and the contract every server module keeps."""

from __future__ import annotations

import importlib

import pytest
from mcp.server.mcpserver import MCPServer

from podium import mcp_servers


def test_all_names_exist() -> None:
    for name in mcp_servers.__all__:
        assert hasattr(mcp_servers, name), name
    assert sorted(mcp_servers.__all__) == sorted(set(mcp_servers.__all__))


@pytest.mark.parametrize("name", sorted(mcp_servers.SERVERS))
def test_each_server_module_has_a_factory_and_a_default_server(name: str) -> None:
    module = importlib.import_module(mcp_servers.SERVERS[name])
    assert module.__doc__
    assert isinstance(module.server, MCPServer) and module.server.name == name
    fresh = mcp_servers.create_server(name)
    assert isinstance(fresh, MCPServer) and fresh is not module.server


def test_an_unknown_server_is_refused_with_the_choices() -> None:
    with pytest.raises(mcp_servers.UnknownServerError, match="choose from blackboard, calc, docs"):
        mcp_servers.create_server("abacus")
