"""The concrete transports, one per module or subpackage, each with its URL handler:
``loop://`` (:mod:`.loopback`), ``shm://`` and ``openamp:`` (:mod:`.shm`). Nothing below
``transports`` imports them; :func:`transports.open_transport` reaches them lazily by scheme.
"""
