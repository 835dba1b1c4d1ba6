"""Captures of rpmsg traffic that Wireshark reads: a pcapng writer (one interface per bus) and
the Lua dissector that decodes it (``aioamp capture --install-dissector``). See docs/capture.md.

The public names are imported lazily, on first use: ``import rpmsg.capture.pcapng`` (the
pure block encoder) loads nothing else.
"""

from typing import TYPE_CHECKING

from transports._lazy import lazy_exports

__getattr__, __all__ = lazy_exports(
    globals(),
    {
        ".dissector": (
            "DISSECTOR_NAME",
            "dissector_source",
            "install_dissector",
        ),
        ".pcapng": (
            "LINKTYPE_USER0",
            "LINKTYPE_USER15",
        ),
        ".writer": (
            "CaptureStatistics",
            "PcapngCapture",
            "PSEUDO_HDR",
        ),
    },
)

if TYPE_CHECKING:
    from .dissector import DISSECTOR_NAME as DISSECTOR_NAME
    from .dissector import dissector_source as dissector_source
    from .dissector import install_dissector as install_dissector
    from .pcapng import LINKTYPE_USER0 as LINKTYPE_USER0
    from .pcapng import LINKTYPE_USER15 as LINKTYPE_USER15
    from .writer import PSEUDO_HDR as PSEUDO_HDR
    from .writer import CaptureStatistics as CaptureStatistics
    from .writer import PcapngCapture as PcapngCapture
