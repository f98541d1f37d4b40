"""Sub-commands of ``dsd``: one module each, discovered by ``dsd.cli``."""
