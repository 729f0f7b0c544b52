"""live: real-time one-shot face reenactment for video calls."""

__version__ = "0.1.0"
