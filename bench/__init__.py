"""idbench: an identity resolution benchmark harness.

Plugin authors use :mod:`bench.api` (the matcher contract) and :mod:`bench.testing`
(the conformance suite).
"""

__version__ = "0.1.0"
