"""RAG (Lewis et al. 2020): retrieval-augmented generation on the dpr retriever."""
