"""Build hook of flowrl-verify (the metadata is in pyproject.toml).

When this directory sits in a flowrl source tree (../include/flowrl/capi.h exists), the
installed package records that tree in flowrl_verify/_install.py, so that it finds
<tree>/build/libflowrl.so and <tree>/golden without an environment variable
(docs/python.md "Finding libflowrl.so")."""
import os

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPy(build_py):
    def run(self):
        super().run()
        here = os.path.dirname(os.path.abspath(__file__))
        tree = os.path.dirname(here)
        if not os.path.exists(os.path.join(tree, "include", "flowrl", "capi.h")):
            tree = None
        out = os.path.join(self.build_lib, "flowrl_verify", "_install.py")
        with open(out, "w") as f:
            f.write('"""Written by setup.py at build time."""\n')
            f.write(f"SOURCE_TREE = {tree!r}\n")


setup(cmdclass={"build_py": BuildPy})
