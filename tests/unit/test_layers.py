"""scanguard's imports point down its layers (the contracts in .importlinter, import-linter's own checks
on grimp's import graph): true of the package as it is, and broken by any import that points up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grimp
import pytest
from importlinter.api import read_configuration
from importlinter.contracts.forbidden import ForbiddenContract
from importlinter.contracts.layers import LayersContract
from importlinter.domain.contract import Contract

pytestmark = pytest.mark.timeout(60)
CONFIG = Path(__file__).resolve().parents[2] / ".importlinter"
KINDS: dict[str, type[Contract]] = {"layers": LayersContract, "forbidden": ForbiddenContract}


def _contracts() -> Iterator[Contract]:
    config = read_configuration(str(CONFIG))
    for options in config["contracts_options"]:
        yield KINDS[options["type"]](options["name"], config["session_options"], options)


def _broken(graph: grimp.ImportGraph) -> list[str]:
    """The names of the contracts the graph breaks, each with what import-linter found."""
    broken = []
    for contract in _contracts():
        check = contract.check(graph, verbose=False)
        if not check.kept:
            broken.append(f"{contract.name}: {check.metadata}")
    return broken


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    """scanguard's imports, TYPE_CHECKING and function-level ones included."""
    return grimp.build_graph("scanguard", cache_dir=None)


def test_every_import_of_scanguard_points_down_its_layers(graph: grimp.ImportGraph) -> None:
    assert _broken(graph) == []


UPWARD = [
    ("scanguard.store.tx", "scanguard.actors.store"),  # the store calls up into the actors
    ("scanguard.store.queries", "scanguard.http.app"),  # ... or into the admin API
    ("scanguard.records", "scanguard.config"),  # records, config and errors stand on nothing above them
    ("scanguard.config", "scanguard.processing.registry"),
    ("scanguard.errors", "scanguard.runtime"),
    ("scanguard.processing.window", "scanguard.store.batches"),  # per-file work knows no database
    ("scanguard.store.batches", "scanguard.processing.pool"),  # ... nor the database the work
    ("scanguard.control", "scanguard.actors.library"),  # the control operations are below the actors
    ("scanguard.status", "scanguard.actors.supervisor"),
    ("scanguard.actors.scan_job", "scanguard.system"),  # an actor does not reach for the assembly
    ("scanguard.system", "scanguard.runtime"),  # ... nor the assembly for its facade
    ("scanguard.store.seam", "scanguard.store.database"),  # the seam does not import its implementation
]


@pytest.mark.parametrize(("importer", "imported"), UPWARD, ids=[f"{a}->{b}" for a, b in UPWARD])
def test_an_import_pointing_up_breaks_a_contract(
    graph: grimp.ImportGraph, importer: str, imported: str
) -> None:
    graph.add_import(importer=importer, imported=imported)
    try:
        assert _broken(graph) != []
    finally:
        graph.remove_import(importer=importer, imported=imported)
