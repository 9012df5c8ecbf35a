"""smgic-pydra: SM-GICNet brain registration with Pydra workflows, BIDS I/O and evaluation."""

__version__ = "0.1.0"
