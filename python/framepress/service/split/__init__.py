"""Split-and-stitch: one long source transcoded in time-range chunks by many workers (DESIGN §6)."""
