"""npm packages for the tests, installed with the ``npm`` client into a
cache directory outside the repository (never committed): htmx for the
browser tests and for checking the examples' checksums.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

#: Where packages are installed, one directory per requested version.
CACHE = (
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    / "flask-conversation-tests"
    / "npm"
)


def npm_file(package: str, version: str, path: str) -> Path:
    """A file of an npm package, installed on first use.

    :param package: the package name, e.g. ``htmx.org``.
    :param version: a version or range npm understands, e.g. ``2``.
    :param path: the file inside the package, e.g. ``dist/htmx.min.js``.
    :raise RuntimeError: npm is missing or the install failed.
    """
    prefix = CACHE / f"{package}@{version}"
    target = prefix / "node_modules" / package / path
    if target.is_file():
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("The tests need npm (apt-get install npm) to fetch htmx.")
    prefix.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [
            npm,
            "install",
            "--prefix",
            str(prefix),
            "--no-audit",
            "--no-fund",
            "--ignore-scripts",
            f"{package}@{version}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0 or not target.is_file():
        raise RuntimeError(f"npm install {package}@{version} failed:\n{proc.stderr}")
    return target


def npm_version(package: str, version: str) -> str:
    """The exact version :func:`npm_file` installed for ``version``."""
    npm_file(package, version, "package.json")
    manifest = CACHE / f"{package}@{version}" / "node_modules" / package / "package.json"
    return str(json.loads(manifest.read_text())["version"])
