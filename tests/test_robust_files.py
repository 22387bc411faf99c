"""Files (issue 19): regular files only, a size cap and a nesting cap before TOML is parsed."""
from __future__ import annotations

import os
import time
import tomllib

import pytest

from gradexplain.files import check_toml_nesting
from gradexplain.errors import LimitError
from tests.conftest import run_cli


def test_device_file_is_refused():
    r = run_cli("check", "/dev/zero")
    assert r.code == 2 and "regular file" in r.stderr


def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "p.toml"
    os.mkfifo(fifo)
    start = time.monotonic()
    r = run_cli("check", str(fifo))
    assert r.code == 2 and "regular file" in r.stderr and time.monotonic() - start < 5


def test_directory_is_refused(tmp_path):
    assert run_cli("check", str(tmp_path)).code == 2


def test_oversized_file_is_refused(tmp_path):
    f = tmp_path / "big.toml"
    f.write_text("# " + "x" * (5 * 2**20))
    r = run_cli("check", str(f))
    assert r.code == 2 and "limit" in r.stderr


def test_deeply_dotted_keys_are_refused_before_parsing(tmp_path):
    f = tmp_path / "deep.toml"
    f.write_text("x." * 30_000 + "y = 1\n")  # tomllib needs > 20 s for this
    start = time.monotonic()
    r = run_cli("check", str(f))
    assert r.code == 2 and "nested deeper" in r.stderr and time.monotonic() - start < 5


@pytest.mark.parametrize("text", [
    '[[problem]]\nname = "a.b.c"\nexpr = "x*1.5"\ninputs = { x = "1.25" }\n',
    'a.b.c = [1.5, 2.5, {d.e = 3}]\n# a.b.c.d.e.f.g\n"q.u.o.t.e" = 1\n',
])
def test_ordinary_toml_passes_the_nesting_check(text):
    check_toml_nesting(text, "f.toml", limit=8)
    tomllib.loads(text)


def test_nesting_counts_brackets_and_dots():
    with pytest.raises(LimitError):
        check_toml_nesting("a = " + "[" * 50 + "]" * 50, "f.toml", limit=40)
    with pytest.raises(LimitError):
        check_toml_nesting("[" + ".".join("t" * 1 for _ in range(60)) + "]\n", "f.toml", limit=40)
