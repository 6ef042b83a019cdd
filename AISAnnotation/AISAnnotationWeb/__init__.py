"""Browser client (trame-slicer) on the MRML bridge: one process per user, see :mod:`.app`."""
