"""Embedding whole datasets on one or many processes (``torchrun``), resumably."""

from i2s.dataset.ranks import Ranks
from i2s.dataset.run import DatasetProgress, DatasetRun, embed_dataset, settings_hash
from i2s.dataset.sources import Source, find_sources

__all__ = ["DatasetProgress", "DatasetRun", "Ranks", "Source", "embed_dataset",
           "find_sources", "settings_hash"]
