"""Unit tests of the pure cores, run without an event loop: vrings (and the C twin against the
pure reference), wire codecs, the rpmsg core, the resource table, the lifecycle and recovery
policy, crash plans, firmware parsing, the layering and export rules."""
