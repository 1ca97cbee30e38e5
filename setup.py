"""The server's wheel leaves out the client's modules: they are llamactl-client's
(clients/python/split.py says which), which this distribution depends on."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "clients" / "python"))

from setuptools import setup
from split import ServerBuildPy

setup(cmdclass={"build_py": ServerBuildPy})
