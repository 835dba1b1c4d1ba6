"""``vhost-user:PATH``: the virtio rpmsg device over QEMU's vhost-user protocol, so a virtual
machine's kernel, or User-Mode Linux's ``virtio_uml``, is the rpmsg host of an aioamp remote
(:mod:`.server`, the backend), and aioamp the host of any vhost-user rpmsg device
(:mod:`.client`, the frontend). :mod:`.url` opens either by role.

The protocol (:mod:`.protocol`, :mod:`.reader`), the memory table (:mod:`.table`) and the
backend's state machine (:mod:`.backend`) are pure; :mod:`.link` holds what both shells share.
Nothing is imported here, so the pure modules load no socket or mmap.
"""
