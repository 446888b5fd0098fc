"""hrdd: a human rights due diligence gate for sales of surveillance-capable products."""

__version__ = "0.1.0"
