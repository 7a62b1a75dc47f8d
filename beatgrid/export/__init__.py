"""Files users open in other software: exports of analyses.

- :mod:`beatgrid.export.rekordbox`: Rekordbox XML collections (beatgrids for DJ software);
- :mod:`beatgrid.export.jams`: JAMS annotations (beats and tempo, the MIR community's format).

Both write through :mod:`beatgrid.io`'s atomic writes; ``beatgrid predict --format`` and
:mod:`beatgrid.batch` call them.
"""
