"""dilated_convolutions: Multi-Scale Context Aggregation by Dilated Convolutions (Yu & Koltun
2016)."""
