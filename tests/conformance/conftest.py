"""The stores every contract test runs on: each engine configuration, and the dict model.

`opener` opens stores of one kind (see harness.py) with an injected clock; `store` is one
opened with default options; `clock` is the opener's clock, which only the test moves.
"""

from __future__ import annotations

import pytest

from tests.conformance.harness import KINDS, Opener


@pytest.fixture(params=KINDS, ids=[k.name for k in KINDS])
async def opener(request, tmp_path):
    op = Opener(request.param, tmp_path)
    yield op
    await op.close_all()


@pytest.fixture
async def store(opener):
    return await opener.open()


@pytest.fixture
def clock(opener):
    return opener.clock
