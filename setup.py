"""Install DVI for TensorBoard: the `tensorboard_plugin_dvi` plugin, the `dvi_core` method and the tab's files."""

import glob
import os

from setuptools import setup

HERE = os.path.dirname(os.path.abspath(__file__))


def frontend_files():
    """Every tab file under frontend/, relative to it (shipped as package data of tensorboard_plugin_dvi.frontend)."""
    root = os.path.join(HERE, "frontend")
    patterns = ("**/*.js", "**/*.css", "**/*.svg", "**/*.png")
    return sorted({os.path.relpath(p, root) for pat in patterns for p in glob.glob(os.path.join(root, pat),
                                                                                   recursive=True)})


with open(os.path.join(HERE, "README.md"), encoding="utf-8") as handle:
    LONG_DESCRIPTION = handle.read()

setup(
    name="tensorboard-plugin-dvi",
    version="0.2.0",
    description="DVI for TensorBoard: time-travelling maps of a classifier's representations and decision boundaries",
    long_description=LONG_DESCRIPTION,
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=["dvi_core", "tensorboard_plugin_dvi", "tensorboard_plugin_dvi.frontend"],
    package_dir={"tensorboard_plugin_dvi.frontend": "frontend"},
    package_data={"tensorboard_plugin_dvi": ["http_api.md"], "tensorboard_plugin_dvi.frontend": frontend_files()},
    install_requires=[
        "tensorboard>=2.20",
        # Any torch >= 2.1 works; the Makefile installs a CPU build first so this never pulls a CUDA build.
        "torch>=2.1",
        "numpy>=1.24",
        "pynndescent>=0.5.10",
        "protobuf",
        "werkzeug>=2.0",
        "pillow>=9.0",
    ],
    extras_require={
        # hypothesis: property-based tests of every route's parameters (a well-kept library for generating
        # hostile inputs; hand-written generators would cover far less)
        "test": ["pytest>=7", "pytest-timeout>=2.1", "playwright>=1.40", "scikit-learn>=1.2", "ruff>=0.5",
                 "hypothesis>=6.100", "lightning>=2.1", "tqdm>=4.60", "ray>=2.9"],
        "bench": ["umap-learn>=0.5.4", "scikit-learn>=1.2", "py-spy>=0.3"],
        # dvi.dynamics.load(...) returns a pandas DataFrame when pandas is installed (numpy arrays otherwise)
        "notebook": ["pandas"],
        # tensorboard_plugin_dvi.lightning.DVICallback (lightning.pytorch); tqdm draws dvi.collect's progress bar
        "lightning": ["lightning>=2.1", "tqdm>=4.60"],
        # dvi-project --ray ADDRESS: runs fanned out over an existing Ray cluster
        "ray": ["ray>=2.9"],
    },
    entry_points={
        "tensorboard_plugins": ["dvi = tensorboard_plugin_dvi.loader:DviLoader"],
        "console_scripts": ["dvi-project = tensorboard_plugin_dvi.cli:main"],
    },
    classifiers=["Programming Language :: Python :: 3", "Topic :: Scientific/Engineering :: Visualization"],
)
