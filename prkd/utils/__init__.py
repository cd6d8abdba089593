"""Small infrastructure the rest of prkd stands on: atomic file writes (``atomic``), the compute device
(``device``), peak-memory measurement (``memory``), the allocator setting (``allocator``) and the repository's
own folders (``paths``). Nothing here knows about optics or learning."""
