"""RecommenderBuilder: the two-stage (retrieval + ranking) servable."""

from components.recommender_builder.component import RecommenderBuilder

__all__ = ['RecommenderBuilder']
