"""Build the installable Blender extension zip: ``python scripts/build_extension.py [--out dist]``.

What goes in:

* ``blender_addon/`` (sources, manifest), without caches;
* ``wheels/dyntet_protocol-<version>-py3-none-any.whl``, a pure-Python wheel built here from
  ``shared/dyntet_protocol`` (Blender installs extension wheels into its own site-packages, so the
  add-on imports ``dyntet_protocol`` the same way in development and when installed);
* ``wheels/pyzmq-…whl`` and ``wheels/msgpack-…whl`` for Linux x64, Windows x64 and macOS (arm64 and
  x64), fetched at build time with ``pip download --only-binary=:all:`` for Blender's Python (3.11),
  pinned to the versions of the build environment. They are never committed.

The manifest inside the zip gets the ``wheels`` list and the ``platforms`` those wheels cover.
``--no-wheels`` builds a zip with only the ``dyntet_protocol`` wheel, for machines that already have
pyzmq and msgpack (and for the tests, which must not download anything).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.metadata
import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ADDON = REPO / "blender_addon"
PROTOCOL = REPO / "shared" / "dyntet_protocol"
FORMATS = REPO / "shared" / "dyntet_formats"
"""The numpy-only folder readers the add-on shares with the backend; shipped in the same wheel."""
BLENDER_PYTHON = "3.11"
"""Blender 4.2 – 5.0 ship Python 3.11."""
EXCLUDED_PARTS = {"__pycache__", ".pytest_cache", ".mypy_cache"}
EXCLUDED_SUFFIXES = {".pyc", ".pyo", ".orig", ".rej"}


@dataclass(frozen=True)
class Platform:
    blender: str
    """Blender's platform name in the manifest."""
    pip: tuple[str, ...]
    """``pip download --platform`` tags accepted for it, most specific last."""


PLATFORMS = (
    Platform("linux-x64", ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64")),
    Platform("windows-x64", ("win_amd64",)),
    Platform("macos-arm64", ("macosx_11_0_arm64", "macosx_12_0_arm64", "macosx_14_0_arm64")),
    Platform("macos-x64", ("macosx_10_9_x86_64", "macosx_10_15_x86_64", "macosx_13_0_x86_64")),
)
THIRD_PARTY = ("pyzmq", "msgpack")


class BuildError(RuntimeError):
    """The extension could not be built; the message says why."""


def protocol_version() -> str:
    """``__version__`` of ``dyntet_protocol``, read from its source (no import: it needs pyzmq)."""
    match = re.search(r'^__version__\s*=\s*"([^"]+)"', (PROTOCOL / "__init__.py").read_text(), re.MULTILINE)
    if match is None:
        raise BuildError(f"no __version__ in {PROTOCOL / '__init__.py'}")
    return match.group(1)


def addon_version() -> str:
    match = re.search(r'^version\s*=\s*"([^"]+)"', (ADDON / "blender_manifest.toml").read_text(), re.MULTILINE)
    if match is None:
        raise BuildError("no version in blender_addon/blender_manifest.toml")
    return match.group(1)


def _source_files(root: Path) -> list[Path]:
    return sorted(
        path for path in root.rglob("*")
        if path.is_file() and not (set(path.relative_to(root).parts) & EXCLUDED_PARTS)
        and path.suffix not in EXCLUDED_SUFFIXES
    )


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def build_protocol_wheel(dest: Path) -> Path:
    """A pure-Python wheel of ``dyntet_protocol`` and ``dyntet_formats`` (PEP 427 layout, RECORD with hashes)."""
    version = protocol_version()
    dist_info = f"dyntet_protocol-{version}.dist-info"
    files: dict[str, bytes] = {
        f"{package.name}/{path.relative_to(package).as_posix()}": path.read_bytes()
        for package in (PROTOCOL, FORMATS)
        for path in _source_files(package)
    }
    files[f"{dist_info}/METADATA"] = (
        "Metadata-Version: 2.1\nName: dyntet-protocol\n"
        f"Version: {version}\nSummary: Wire protocol between Blender and the DynTet backend\n"
        "License: GPL-3.0-or-later\nRequires-Python: >=3.11\nRequires-Dist: numpy\n"
        "Requires-Dist: msgpack\nRequires-Dist: pyzmq\n"
    ).encode()
    files[f"{dist_info}/WHEEL"] = (
        "Wheel-Version: 1.0\nGenerator: dyntet build_extension\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    ).encode()
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in files.items())
    record += f"{dist_info}/RECORD,,\n"
    files[f"{dist_info}/RECORD"] = record.encode()
    dest.mkdir(parents=True, exist_ok=True)
    wheel = dest / f"dyntet_protocol-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(_zip_info(name), data)
    return wheel


def _zip_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))  # reproducible archives
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def download_wheels(dest: Path, platforms: tuple[Platform, ...] = PLATFORMS) -> list[Path]:
    """``pip download`` the binary wheels of :data:`THIRD_PARTY` for every platform (pinned)."""
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in THIRD_PARTY]
    wheels: list[Path] = []
    for platform in platforms:
        target = dest / platform.blender
        command = [
            sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
            "--only-binary=:all:", "--no-deps", "--python-version", BLENDER_PYTHON,
            "--implementation", "cp", "--dest", str(target),
        ]
        for tag in platform.pip:
            command += ["--platform", tag]
        print(f"fetching {', '.join(pins)} for {platform.blender}")
        result = subprocess.run(command + pins, capture_output=True, text=True)
        if result.returncode != 0:
            raise BuildError(f"pip download for {platform.blender} failed:\n{result.stderr.strip()}")
        found = sorted(target.glob("*.whl"))
        names = {path.name.split("-")[0].lower() for path in found}
        if names != set(THIRD_PARTY):
            raise BuildError(f"expected wheels of {THIRD_PARTY} for {platform.blender}, got {[p.name for p in found]}")
        wheels += [path for path in found if path.name not in {w.name for w in wheels}]  # universal2 serves both Macs
    return wheels


def manifest_with_wheels(text: str, wheels: list[str], platforms: list[str] | None) -> str:
    """The manifest text with its ``wheels`` list (and ``platforms`` when given) filled in."""
    listing = "wheels = [\n" + "".join(f'  "./wheels/{name}",\n' for name in wheels) + "]"
    if re.search(r"^wheels\s*=\s*\[[^\]]*\]", text, re.MULTILINE):
        text = re.sub(r"^wheels\s*=\s*\[[^\]]*\]", lambda _: listing, text, count=1, flags=re.MULTILINE)
    else:
        text = text.rstrip() + "\n\n" + listing + "\n"
    if platforms:
        quoted = ", ".join(f'"{p}"' for p in platforms)
        text = re.sub(r"^(blender_version_min\s*=.*)$", rf"\1\nplatforms = [{quoted}]", text, count=1,
                      flags=re.MULTILINE)
    return text


def build(out_dir: Path, *, with_wheels: bool = True, wheel_cache: Path | None = None) -> Path:
    """Write ``dyntet-<version>.zip`` into ``out_dir`` and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dyntet-ext-") as tmp:
        staging = Path(tmp)
        wheels = [build_protocol_wheel(staging / "wheels")]
        platforms = None
        if with_wheels:
            wheels += download_wheels(wheel_cache or staging / "downloads")
            platforms = [p.blender for p in PLATFORMS]
        manifest = manifest_with_wheels(
            (ADDON / "blender_manifest.toml").read_text(encoding="utf-8"), [w.name for w in wheels], platforms
        )
        zip_path = out_dir / f"dyntet-{addon_version()}.zip"
        with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in _source_files(ADDON):
                relative = path.relative_to(ADDON).as_posix()
                data = manifest.encode() if relative == "blender_manifest.toml" else path.read_bytes()
                archive.writestr(_zip_info(relative), data)
            for wheel in wheels:
                archive.writestr(_zip_info(f"wheels/{wheel.name}"), wheel.read_bytes())
    return zip_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "dist", help="output folder (default: dist/)")
    parser.add_argument("--no-wheels", action="store_true", help="do not download pyzmq/msgpack wheels")
    parser.add_argument("--wheel-cache", type=Path, default=None, help="keep downloaded wheels here")
    args = parser.parse_args(argv)
    try:
        path = build(args.out, with_wheels=not args.no_wheels, wheel_cache=args.wheel_cache)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    with zipfile.ZipFile(path) as archive:
        count = len(archive.namelist())
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {count} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
