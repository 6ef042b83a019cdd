"""Sub-commands of ``ais-annotate``: each module defines ``register(subparsers)``."""
