"""Real dataset loaders (download + checksum + official format) and generators for the
synthetic tasks papers define themselves."""

from sutskever30.data.paths import cache_dir, data_dir
from sutskever30.data.registry import Dataset, all_datasets, fetch_missing, get_dataset

__all__ = ["Dataset", "all_datasets", "cache_dir", "data_dir", "fetch_missing", "get_dataset"]
