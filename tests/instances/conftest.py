from __future__ import annotations

import pytest
from instances_oracle_cases import make_cases, run_cases


@pytest.fixture(scope="session")
def instances_oracle(tmp_path_factory, small_checkpoint):
    """Every instance-segmentation oracle case with micro-sam's answers (one micro-sam run)."""
    folder = tmp_path_factory.mktemp("instances-oracle")
    return run_cases(make_cases(small_checkpoint, folder), folder)


@pytest.fixture(scope="session")
def oracle_cases(instances_oracle):
    return instances_oracle.cases


@pytest.fixture(scope="session")
def bilinear_case(oracle_cases):
    return oracle_cases["bilinear"]
