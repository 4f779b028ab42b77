"""Build the optional C speedups; ftprep works without them (see ftprep/_native.py)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "ftprep._speedups",
            ["ftprep/_speedups.c"],
            # A machine without a C compiler still installs ftprep, in pure Python.
            optional=True,
        )
    ]
)
