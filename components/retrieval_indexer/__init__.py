"""RetrievalIndexer: the retrieval servable over the whole catalogue."""

from components.retrieval_indexer.component import RetrievalIndexer

__all__ = ['RetrievalIndexer']
