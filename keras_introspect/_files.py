"""Output files: checked before any computation, written atomically.

Every file the package writes (reports, maps, label images, arrays) goes
through `write_atomic`: the content is written to a temporary file in the
same folder, flushed to disk, then moved over the target with `os.replace`.
A full disk or an interrupted run leaves the previous file as it was, never a
truncated one, and a symbolic link at the target is replaced, not followed.
"""

from __future__ import annotations

import contextlib
import os
import tempfile


def check_output_path(path, what: str = "output file") -> str:
    """`path` as a string, if a file can be written there; else a one-line `ValueError`.

    Checked before any work: the parent folder must exist and be writable,
    and the path must not be a folder.
    """
    path = os.fspath(path)
    if not path:
        raise ValueError(f"Expected a path for the {what}. Received: an empty path")
    if os.path.isdir(path) and not os.path.islink(path):
        raise ValueError(f"Expected a file path for the {what}. Received: {path!r} is a folder")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise ValueError(
            f"The folder of the {what} does not exist: {parent!r}. Create it first, or "
            "choose another path"
        )
    if not os.access(parent, os.W_OK):
        raise ValueError(f"Cannot write the {what} into {parent!r}: permission denied")
    return path


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; on success it replaces `path`.

    For writers that take a file name (matplotlib, numpy). On an error the
    temporary file is removed and `path` keeps its previous content.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{base}.", suffix=".tmp", dir=folder)
    os.close(handle)
    os.chmod(temporary, _mode(path))
    try:
        yield temporary
        with open(temporary, "rb+") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


def _read_umask() -> int:
    # read once, at import (changing the process' umask later, even for an
    # instant, would race with other threads creating files)
    umask = os.umask(0)
    os.umask(umask)
    return umask


_UMASK = _read_umask()


def _mode(path) -> int:
    """The permissions a new file gets (an existing target keeps its own)."""
    if os.path.isfile(path) and not os.path.islink(path):
        return os.stat(path).st_mode & 0o777
    return 0o666 & ~_UMASK


def write_atomic(path, content) -> str:
    """Write `content` (`str` as UTF-8, or `bytes`) to `path` atomically; return the path."""
    data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
    with atomic_path(path) as temporary, open(temporary, "wb") as out:
        out.write(data)
    return os.fspath(path)


ANIMATION_FORMATS = ("gif", "png")
"""Animated GIF, and APNG (``"png"``)."""


def animation_format(path) -> str:
    """``"gif"`` or ``"png"`` (APNG) for an animation file's extension; `ValueError` else."""
    extension = os.path.splitext(os.fspath(path))[1].lower()
    if extension not in (".gif", ".png", ".apng"):
        raise ValueError(
            f"Expected an animation path ending in .gif, .png or .apng. Received: path={path!r}"
        )
    return "gif" if extension == ".gif" else "png"


def animation_bytes(frames, format: str = "gif", fps: float = 4.0) -> bytes:
    """Frames (uint8 arrays `(h, w)` grey or `(h, w, 3)` RGB) as a looping animated GIF
    or APNG, `1 / fps` seconds per frame; the file's bytes."""
    import io

    from PIL import Image

    from keras_introspect._validation import check_number, check_one_of

    check_one_of(format, "format", ANIMATION_FORMATS)
    fps = check_number(fps, "fps", 0.0, strict=True)
    images = [Image.fromarray(frame, "L" if frame.ndim == 2 else "RGB") for frame in frames]
    buffer = io.BytesIO()
    images[0].save(
        buffer,
        format=format.upper(),
        save_all=True,
        append_images=images[1:],
        duration=round(1000.0 / fps),
        loop=0,
    )
    return buffer.getvalue()
