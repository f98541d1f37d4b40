"""dsd — DirectStorage for Linux.

One daemon per host (``dsd.daemon``) takes batches of file reads from many clients
(``dsd.client``) over ZeroMQ, using the wire format of ``dsd.protocol``; the C core
(``dsd._native``) does the per-byte and per-request work. ``dsd.codec`` holds the
GDeflate and Zstandard codecs; ``dsd.cli`` is the ``dsd`` command.
"""

__version__ = "0.1.0"
