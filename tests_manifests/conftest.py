"""Fixtures for the manifest checks (helpers: manifest_copy.py)."""
from __future__ import annotations

import pathlib

import pytest

from manifest_copy import Copy, make_copy


@pytest.fixture
def repo_copy(tmp_path: pathlib.Path) -> Copy:
    return make_copy(tmp_path)
