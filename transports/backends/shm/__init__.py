"""``shm://NAME`` and ``openamp:``: POSIX shared memory plus a unix-socket doorbell between
two processes (:mod:`.transport`), the doorbell socket's session protocol (:mod:`.session`)
and the URL handlers (:mod:`.url`)."""

from .transport import ShmTransport, open_shm, shm_path

__all__ = ["ShmTransport", "open_shm", "shm_path"]
