"""Commands from Blender's main thread to the network worker, and the settings they carry. No ``bpy``.

Operators turn properties into these plain objects at the boundary; the worker never reads Blender data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Literal


@dataclass(frozen=True)
class BackendSettings:
    """The add-on preferences, resolved to absolute paths."""

    mode: Literal["LOCAL", "REMOTE"] = "LOCAL"
    python: str = ""
    """Interpreter with ``dyntet`` installed (LOCAL); empty: the ``dyntet`` executable on PATH."""
    workspace: str = ""
    """The local backend's workspace folder (absolute)."""
    state_dir: str = ""
    """The add-on's user folder: backend record, log, previews, fetched sequences."""
    port: int = 5555
    remote_address: str = "tcp://127.0.0.1:5555"
    server_key_file: str = ""
    client_key_file: str = ""
    stop_on_quit: bool = True
    connect_timeout_s: float = 60.0
    """How long a freshly started local backend may take to answer ``hello``."""

    def __post_init__(self) -> None:
        if self.mode not in ("LOCAL", "REMOTE"):
            raise ValueError(f"mode must be LOCAL or REMOTE, got {self.mode!r}")
        if not 1024 <= self.port <= 65534:
            raise ValueError(f"port must be in 1024..65534 (events use port + 1), got {self.port}")
        if self.mode == "REMOTE" and "://" not in self.remote_address:
            raise ValueError(f"the remote address must look like tcp://host:5555, got {self.remote_address!r}")

    @property
    def request_endpoint(self) -> str:
        return f"tcp://127.0.0.1:{self.port}" if self.mode == "LOCAL" else self.remote_address

    @property
    def event_endpoint(self) -> str:
        """Where a local backend publishes events (a remote one reports its own in ``hello``)."""
        return f"tcp://127.0.0.1:{self.port + 1}"


@dataclass(frozen=True)
class Connect:
    settings: BackendSettings
    start_local: bool = True
    """LOCAL mode: start a backend when none answers (else only connect to a running one)."""


@dataclass(frozen=True)
class Disconnect:
    pass


@dataclass(frozen=True)
class StopLocal:
    """Ask the local backend to shut down, then make sure its process is gone."""

    settings: BackendSettings | None = None
    """Where its record lives when the worker has not connected yet (a backend left by an earlier session)."""


@dataclass(frozen=True)
class Submit:
    kind: str
    params: dict[str, Any]
    label: str = ""
    stage_files: dict[str, str] = field(default_factory=dict)
    """``{param name: absolute local path}``: files on this machine the backend must find in its workspace.
    The worker copies them in under ``footage/`` (LOCAL; a file already inside is used where it is) or
    uploads them there (REMOTE), then sets the parameter to the workspace-relative path."""
    then_import: str = ""
    """Workspace-relative sequence folder to bring to this machine (and import) when the job is done."""


SPLITS = ("train", "test", "all")
"""Drive sources naming a split of the avatar's own clip (the server's ``generate`` job kind)."""


def generate_request(name: str, drive: str, *, first_frame: int = 0, last_frame: int = 0, video: str = "",
                     local: bool = True, audio: str = "") -> Submit:
    """The ``generate`` job for the Generate panel's settings (``docs/protocol.md``, job kinds).

    Args:
        name: the subject: reads ``runs/NAME``, writes ``sequences/NAME_<drive or video name>``.
        drive: a split (``train``, ``test``, ``all``), ``video`` or ``audio`` (a voice recording).
        first_frame, last_frame: the driver frames to generate, both included; ``last_frame`` 0 means
            to the end. Sent as the half-open ``"START:STOP"`` the server expects.
        video: with ``drive="video"``: a file on this machine (``local``; copied or uploaded into the
            workspace by the worker) or a path inside a remote backend's workspace.
        local: ``video`` / ``audio`` is a file on this machine.
        audio: with ``drive="audio"``: the speech (any sound file, or a video whose sound track is used),
            staged like ``video``.

    Raises:
        ValueError: a setting the panel should report (the message says which).
    """
    if first_frame < 0 or last_frame < 0:
        raise ValueError("Frame numbers cannot be negative")
    if last_frame and last_frame < first_frame:
        raise ValueError("The last frame cannot come before the first (0 means to the end)")
    params: dict[str, Any] = {"run": f"runs/{name}"}
    stage: dict[str, str] = {}
    if drive in SPLITS:
        params["drive"], label = drive, drive
    elif drive in ("video", "audio"):
        path = (video if drive == "video" else audio).strip()
        if not path:
            raise ValueError("Pick the driver video" if drive == "video" else "Pick the voice recording")
        label = _label(path)
        if local:
            stage["drive"] = path
            params["drive"] = ""  # the worker puts the file's workspace path here
        else:
            params["drive"] = path.replace("\\", "/").lstrip("/")
        if drive == "audio":
            params["audio_only"] = True  # the speech drives the mouth, whatever the file's kind
    else:
        raise ValueError(f"Unknown drive {drive!r}: expected {', '.join(SPLITS)}, video or audio")
    params["out"] = out = f"sequences/{name}_{label}"
    if first_frame or last_frame:
        params["frames"] = f"{first_frame}:{last_frame + 1 if last_frame else ''}"
    return Submit("generate", params, label=f"Generate {name}", stage_files=stage, then_import=out)


def _label(path: str) -> str:
    """A folder-name-safe label of a video file's name (``take 2.mp4`` → ``take_2``)."""
    stem = path.replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    cleaned = "".join(c if c.isalnum() or c in "-_" else "_" for c in stem).strip("_")
    return cleaned or "video"


BAKE_CONTEXT_FRAMES = 64
"""Frames sent on each side of a baked range (within the imported frames): context for the backend's
expression windows (27 frames at most in our presets), so a part of a take bakes as the whole take would."""


@dataclass(frozen=True)
class BakeExact:
    """Send edited control curves to the backend (``bake.exact``); the meshes come back as :class:`~.state.BakeReady`."""

    run: str
    """The run folder that made the controls, as a path on the backend's machine (``controls.npz`` meta)."""
    names: tuple[str, ...]
    controls: Any
    """float32 [T, C]: the evaluated control values of every sent frame, context included."""
    start: int
    stop: int
    """Rows of ``controls`` to bake (the others are context)."""
    out: str
    """Workspace-relative bake folder, e.g. ``bakes/anna``."""
    object_name: str
    frame_first: int
    """Scene frame of row ``start``."""


def bake_window(imported: tuple[int, int], wanted: tuple[int, int]) -> tuple[int, int, int, int]:
    """``(first sent frame, frames sent, start row, stop row)`` to bake scene frames ``wanted`` (both included) of a head
    whose imported frames are ``imported``; the rows around ``wanted`` are context.

    Raises ValueError when the range holds no imported frame (only those have correctives to replace).
    """
    first, last = max(wanted[0], imported[0]), min(wanted[1], imported[1])
    if first > last:
        raise ValueError(f"frames {wanted[0]}–{wanted[1]} hold none of the head's imported frames "
                         f"{imported[0]}–{imported[1]}")
    sent_first = max(imported[0], first - BAKE_CONTEXT_FRAMES)
    sent_last = min(imported[1], last + BAKE_CONTEXT_FRAMES)
    return sent_first, sent_last - sent_first + 1, first - sent_first, last - sent_first + 1


def run_in_workspace(run: str, workspace: str) -> str:
    """The workspace-relative form of a run folder path recorded on the backend's machine."""
    run_path, root = PurePosixPath(run.replace("\\", "/")), PurePosixPath(workspace.replace("\\", "/"))
    if not run or not workspace:
        raise ValueError("this head does not say which run made it: generate it again with `dyntet rig` done")
    try:
        return run_path.relative_to(root).as_posix()
    except ValueError:
        raise ValueError(f"the run {run} that made this head is not in the backend's workspace {workspace}: "
                         "connect to the backend that generated it") from None


@dataclass(frozen=True)
class Cancel:
    job_id: str


@dataclass(frozen=True)
class Resume:
    job_id: str


@dataclass(frozen=True)
class FetchSequence:
    """Bring an existing sequence folder of the backend's workspace here (then the main thread imports it)."""

    relative: str
    """Workspace-relative folder, e.g. ``sequences/anna_test``."""


@dataclass(frozen=True)
class Refresh:
    """List datasets, runs and sequences again."""


@dataclass(frozen=True)
class Quit:
    stop_local: bool = False


Command = Connect | Disconnect | StopLocal | Submit | BakeExact | Cancel | Resume | FetchSequence | Refresh | Quit
