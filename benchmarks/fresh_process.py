"""Run one variant of a benchmark in a fresh Python process, so that memory, caches and traced functions do
not leak from one variant into the next."""
import json
import os
import subprocess
import sys
from typing import Sequence

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_json(module: str, args: Sequence[str]) -> dict:
    """Runs `python -m module *args` from the repository root and returns the JSON object on its last line of
    output; exits naming the module, its exit status and the end of its error output if it fails."""
    process = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO_ROOT, capture_output=True, text=True)
    if process.returncode:
        sys.exit(f"{module} {' '.join(args)} failed (exit {process.returncode}):\n{process.stderr[-3000:]}")
    return json.loads(process.stdout.strip().splitlines()[-1])
