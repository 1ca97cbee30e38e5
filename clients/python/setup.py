"""The client's wheel keeps only the client's modules (split.py says which)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from setuptools import setup
from split import CLIENT_DATA, CLIENT_PACKAGES, ClientBuildPy

setup(packages=CLIENT_PACKAGES, package_data=CLIENT_DATA, cmdclass={"build_py": ClientBuildPy})
