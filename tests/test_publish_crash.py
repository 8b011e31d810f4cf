"""The second half of the crash test's kill points (test_publish.py has the first): a module of its own
so that pytest-xdist runs the halves side by side."""
from __future__ import annotations

import pytest

from test_publish import crash_run

pytestmark = pytest.mark.slow


def test_release_killed_at_any_point_part_2(small_signed, cli, tmp_path):
    crash_run(small_signed, cli, tmp_path, 1, 2)
