"""The suite's own scheduling: every test of an expensive shared session fixture lands in that fixture's xdist group.

Under ``make test`` (pytest-xdist, ``--dist loadgroup``) a group's tests run on one worker, so the fixture is built
once; a test outside its group builds it again on the other worker (the tiny end-to-end run: 150 s of CPU more).
"""

from __future__ import annotations

import pytest

from tests.conftest import SHARED_SESSION_FIXTURES


def _groups(item: pytest.Item) -> set[str]:
    return {mark.args[0] if mark.args else mark.kwargs.get("name") for mark in item.iter_markers("xdist_group")}


def test_tests_of_a_shared_session_fixture_share_its_group(request):
    users = {fixture: [item for item in request.session.items if fixture in getattr(item, "fixturenames", ())]
             for fixture in SHARED_SESSION_FIXTURES}
    if not users["tiny_run"]:
        pytest.skip("no test of the tiny run is selected (make test selects them all)")
    loadgroup = bool(request.config.getoption("loadgroup", default=False))
    for fixture, items in users.items():
        for item in items:
            assert fixture in _groups(item), f"{item.nodeid} uses {fixture} outside its xdist group"
            # xdist schedules on the node id: its own collection hook appends '@group' when the mark is there in time
            if loadgroup:
                assert item.nodeid.endswith(f"@{fixture}"), f"{item.nodeid}: xdist did not see the {fixture} group"
