"""Shared helpers: run the real CLI in-process (CliRunner) or as a subprocess."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from gradexplain.cli import app

# Tests read English unless they ask for another language (a developer's zh_CN locale must not
# change what the suite sees); tests of the language choice set or remove this themselves.
os.environ["GRADEXPLAIN_LANG"] = "en"

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"  # the project's own data; no test reads anything outside the repository
torch.set_default_dtype(torch.float64)


@pytest.fixture(autouse=True)
def _float64():
    """The pipeline sets torch's default dtype per run; tests start from float64 each time."""
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float64)


class Result:
    def __init__(self, code: int, stdout: str, stderr: str):
        self.code, self.stdout, self.stderr = code, stdout, stderr

    def json(self):
        return json.loads(self.stdout)


def run_cli(*args: str) -> Result:
    """The CLI in-process (fast); stdout and stderr kept apart."""
    runner = CliRunner()
    r = runner.invoke(app, list(args))
    return Result(r.exit_code, r.stdout, r.stderr)


def run_subprocess(*args: str, env: dict | None = None, timeout: float = 120) -> Result:
    """The installed entry point in a fresh process (for exit codes, tracebacks, startup)."""
    full_env = dict(os.environ, NO_COLOR="1", COLUMNS="120", **(env or {}))
    p = subprocess.run([sys.executable, "-m", "gradexplain.cli", *args], capture_output=True, text=True,
                       env=full_env, timeout=timeout)
    return Result(p.returncode, p.stdout, p.stderr)
