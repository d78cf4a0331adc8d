"""GPipe (Huang et al. 2019): pipeline parallelism with micro-batches and re-materialization."""
