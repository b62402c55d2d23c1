"""The example of docs/python.md runs and passes (extracted from the page, so it cannot rot),
and fails when its factor 2 is dropped."""
import os
import re
import subprocess
import sys

from conftest import SRC


def example():
    text = open(os.path.join(SRC, "docs", "python.md")).read()
    m = re.search(r"<!-- example: begin -->\n```python\n(.*?)```\n<!-- example: end -->", text, re.S)
    assert m, "docs/python.md: no example block"
    return m.group(1)


def run(code, tmp_path):
    (tmp_path / "test_example.py").write_text(code)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                          capture_output=True, text=True, cwd=tmp_path)


def test_doc_example_passes(tmp_path):
    code = example()
    assert len(code.strip().splitlines()) <= 12
    r = run(code, tmp_path)
    assert r.returncode == 0 and "1 passed" in r.stdout, r.stdout + r.stderr


def test_doc_example_fails_when_wrong(tmp_path):
    code = example().replace("std**2 / (2 * sigma)", "std**2 / sigma", 1)
    r = run(code, tmp_path)
    assert r.returncode == 1 and "ulp distance" in r.stdout and "out.mean[" in r.stdout, r.stdout
