"""The README's first command runs scripts/demo.py: it must keep working. (It broke once without
a word when encode_batch began to return Encodings: nothing ran it.)"""

import subprocess
import sys

from conftest import REPO


def test_the_readme_demo_runs_and_checks_what_it_reports():
    run = subprocess.run([sys.executable, str(REPO / "scripts" / "demo.py"), "--mib", "16"], capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    for line in ("sha256 ok", "all checked", "decode checked", "every sample read", "token-packed"):
        assert line in run.stdout, run.stdout
