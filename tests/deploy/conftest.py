from __future__ import annotations

import pytest

from tests.support.deployment import deploy, drop_deployment


@pytest.fixture(scope="session")
def deployment(tmp_path_factory, redis_url, fake_supplier_server):
    """One production topology for every test of tests/deploy (they run on one xdist worker:
    `xdist_group("deploy")`, with `--dist loadgroup`)."""
    fake_supplier_server.reset()
    deployed = deploy(tmp_path_factory.mktemp("deploy"), redis_url=redis_url, supplier=fake_supplier_server)
    try:
        yield deployed
    finally:
        drop_deployment(deployed)
