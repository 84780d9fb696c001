"""Run the Khronos glTF Validator on our ``.glb`` files.

The validator is the reference implementation of the spec's rules (it is what Sketchfab and the
Khronos sample viewer use). It ships as the npm package ``gltf-validator`` (Dart compiled to JS, no
dependencies); we install a pinned version into a project-local ``.tools/`` folder with
:func:`ensure_validator` (``scripts/ensure_gltf_validator.py``) and run it with Node through a
ten-line script that calls ``validator.validateBytes`` and prints the JSON report.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GLTF_VALIDATOR_VERSION = "2.0.0-dev.3.10"
"""The pinned npm release of ``gltf-validator``."""
TOOLS_ENV = "DYNTET_TOOLS_DIR"
"""Environment variable overriding the tools folder (default: ``.tools`` at the repository root)."""

_NODE_SCRIPT = r"""
const fs = require('fs');
const validator = require(process.argv[1]);
const bytes = new Uint8Array(fs.readFileSync(process.argv[2]));
validator.validateBytes(bytes, {uri: process.argv[2], maxIssues: Number(process.argv[3]), writeTimestamp: false})
  .then((report) => { process.stdout.write(JSON.stringify(report)); })
  .catch((error) => { process.stderr.write(String(error)); process.exit(3); });
"""


class ValidatorUnavailable(RuntimeError):
    """Node, npm or the validator package is missing; the message says how to install it."""


@dataclass
class ValidationReport:
    """The validator's verdict on one file."""

    num_errors: int
    num_warnings: int
    num_infos: int
    num_hints: int
    messages: list[dict[str, Any]] = field(default_factory=list)
    """Issues, each ``{"code", "message", "severity" (0 error … 3 hint), "pointer"?}``."""
    raw: dict[str, Any] = field(default_factory=dict)
    """The whole JSON report (``info`` holds counts of primitives, morph targets, animations, …)."""

    def of_severity(self, severity: int) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("severity") == severity]

    def summary(self) -> str:
        lines = [f"{self.num_errors} errors, {self.num_warnings} warnings, {self.num_infos} infos, "
                 f"{self.num_hints} hints"]
        lines += [f"  [{m.get('severity')}] {m.get('code')}: {m.get('message')} ({m.get('pointer', '')})"
                  for m in self.messages[:20]]
        return "\n".join(lines)


def repository_root() -> Path:
    """The checkout this package runs from (``backend/dyntet/export`` → three levels up)."""
    return Path(__file__).resolve().parents[3]


def tools_dir() -> Path:
    """Where the npm package lives: ``$DYNTET_TOOLS_DIR`` or ``<repository>/.tools``."""
    override = os.environ.get(TOOLS_ENV)
    return Path(override) if override else repository_root() / ".tools"


def installed_version(tools: Path | None = None) -> str | None:
    """Version of the validator installed under ``tools`` (None when absent)."""
    package = (tools or tools_dir()) / "node_modules" / "gltf-validator" / "package.json"
    try:
        return str(json.loads(package.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def missing_tools() -> str | None:
    """None when ``node`` and ``npm`` are on PATH, else a sentence saying which is missing."""
    missing = [name for name in ("node", "npm") if shutil.which(name) is None]
    return f"{' and '.join(missing)} not found on PATH (install Node.js to validate glTF files)" if missing else None


def ensure_validator(tools: Path | None = None, timeout_s: float = 300.0) -> Path:
    """Install the pinned validator under ``tools`` unless it is already there; returns its folder.

    Raises:
        ValidatorUnavailable: Node/npm missing, or npm failed (e.g. no network); the message has npm's output.
    """
    tools = tools or tools_dir()
    package = tools / "node_modules" / "gltf-validator"
    if installed_version(tools) == GLTF_VALIDATOR_VERSION:
        return package
    reason = missing_tools()
    if reason:
        raise ValidatorUnavailable(reason)
    tools.mkdir(parents=True, exist_ok=True)
    command = ["npm", "install", "--prefix", str(tools), "--no-audit", "--no-fund", "--no-save",
               f"gltf-validator@{GLTF_VALIDATOR_VERSION}"]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise ValidatorUnavailable(f"'{' '.join(command)}' did not finish within {timeout_s:.0f} s") from None
    if result.returncode != 0 or installed_version(tools) != GLTF_VALIDATOR_VERSION:
        raise ValidatorUnavailable(
            f"'{' '.join(command)}' failed (exit {result.returncode}):\n{result.stderr.strip()[-2000:]}")
    return package


def validate_glb(path: str | os.PathLike, max_issues: int = 0, timeout_s: float = 600.0) -> ValidationReport:
    """Validate a ``.glb`` (or ``.gltf``) file with the installed Khronos validator.

    Args:
        path: the file.
        max_issues: cap on reported issues (0: all).
        timeout_s: give up after this long.

    Raises:
        ValidatorUnavailable: Node or the validator package is missing (run ``scripts/ensure_gltf_validator.py``).
        RuntimeError: the validator could not read the file at all (not glTF / GLB).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    reason = missing_tools()
    if shutil.which("node") is None:
        raise ValidatorUnavailable(reason or "node not found")
    package = tools_dir() / "node_modules" / "gltf-validator"
    if installed_version() is None:
        raise ValidatorUnavailable(
            f"gltf-validator is not installed in {tools_dir()}; run 'python scripts/ensure_gltf_validator.py'")
    result = subprocess.run(["node", "-e", _NODE_SCRIPT, str(package), str(path.resolve()), str(max_issues)],
                            capture_output=True, text=True, timeout=timeout_s)
    if result.returncode != 0:
        raise RuntimeError(f"glTF validator could not read {path}: {result.stderr.strip()[-2000:]}")
    raw = json.loads(result.stdout)
    issues = raw.get("issues", {})
    return ValidationReport(num_errors=int(issues.get("numErrors", 0)), num_warnings=int(issues.get("numWarnings", 0)),
                            num_infos=int(issues.get("numInfos", 0)), num_hints=int(issues.get("numHints", 0)),
                            messages=list(issues.get("messages", [])), raw=raw)
