"""Command-line programs: ``smgic-train`` (and ``smgic-bids``)."""
