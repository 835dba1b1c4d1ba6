"""Where the project's own firmware images are (built from ``firmware/``, committed).

The ELFs live next to their sources at the top of the source tree; an installed (not
editable) package has no source tree, so there the caller must name an image.
"""

from __future__ import annotations

from pathlib import Path

#: Image per board: the OMAP4 IPU (PandaBoard model), the aioamp virtual board, and the
#: exception-model self-test (virtual board memory map, no rpmsg).
IMAGES = {"omap4": "ipu-m3.elf", "vboard": "vboard-m3.elf", "selftest": "selftest-m3.elf"}
FIRMWARE_DIR = Path(__file__).resolve().parents[2] / "firmware"


def project_firmware(board: str = "vboard") -> Path:
    """The path of the project's firmware image for ``board`` (see :data:`IMAGES`).

    Raises:
        LookupError: unknown board, or the image is not there (not a source checkout).
    """
    if board not in IMAGES:
        raise LookupError(f"no firmware image for board {board!r} (known: {', '.join(IMAGES)})")
    path = FIRMWARE_DIR / IMAGES[board]
    if not path.is_file():
        raise LookupError(
            f"{path} not found: the project's firmware ships in the source tree "
            "(run `make firmware` there, or pass an image path)"
        )
    return path
