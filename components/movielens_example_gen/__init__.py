"""MovieLensExampleGen: a custom ExampleGen for raw MovieLens releases."""

from components.movielens_example_gen.component import MovieLensExampleGen

__all__ = ['MovieLensExampleGen']
