"""The command line's commands (``python -m prkd``; the parser is in ``prkd.__main__``)."""
