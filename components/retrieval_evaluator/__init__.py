"""RetrievalEvaluator: evaluates a top-K retrieval servable and blesses it."""

from components.retrieval_evaluator.component import RetrievalEvaluator

__all__ = ['RetrievalEvaluator']
