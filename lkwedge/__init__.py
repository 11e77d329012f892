"""lkwedge: catch wedged LiveKit reconnects in client logs."""

__version__ = "0.1.0"
