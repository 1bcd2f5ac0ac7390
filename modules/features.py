"""Feature keys and name helpers: the single source of truth for the raw
features that the ExampleGen writes, and for the names that Transform gives
its outputs and vocabularies, which the Trainers read back.

Nothing here imports TensorFlow, so the ExampleGen's Beam workers can use it
cheaply.
"""

from typing import Dict, Tuple

# --- Raw features (written by components/movielens_example_gen) --------------
# One rating example carries the rating, its time and the joined user and
# movie features. A feature that a release lacks (e.g. demographics in
# ml-25m) or that a record lacks (a movie without a release date) is absent
# from the example, never faked.
USER_ID = 'user_id'  # bytes
MOVIE_ID = 'movie_id'  # bytes
RATING = 'rating'  # float: 1-5 stars; half stars from 0.5 in ml-20m/25m
TIMESTAMP = 'timestamp'  # int64, seconds since the epoch (UTC)

AGE = 'age'  # int64: years (ml-100k), the age group's code (ml-1m)
GENDER = 'gender'  # bytes, 'M' or 'F'
OCCUPATION = 'occupation'  # bytes, a name (ml-1m's codes are mapped)
ZIP_CODE = 'zip_code'  # bytes

TITLE = 'title'  # bytes, e.g. 'Toy Story (1995)'
RELEASE_YEAR = 'release_year'  # int64, absent when unknown
GENRES = 'genres'  # bytes list, 0..n values

USER_FEATURES: Tuple[str, ...] = (AGE, GENDER, OCCUPATION, ZIP_CODE)
MOVIE_FEATURES: Tuple[str, ...] = (MOVIE_ID, TITLE, RELEASE_YEAR, GENRES)
RATING_FEATURES: Tuple[str, ...] = ((USER_ID, RATING, TIMESTAMP) +
                                    USER_FEATURES + MOVIE_FEATURES)

LABEL_KEY = RATING

# --- Transform outputs --------------------------------------------------------
# Derived (not raw) feature keys; their transformed names follow the helpers.
ZIP_PREFIX = 'zip_prefix'
TITLE_TOKENS = 'title_tokens'
AGE_BUCKET = 'age_bucket'
RELEASE_YEAR_BUCKET = 'release_year_bucket'
HOUR_OF_DAY = 'hour_of_day'
DAY_OF_WEEK = 'day_of_week'

# Featurization choices shared by Transform (which applies them) and the
# Trainers (which size embeddings from them).
NUM_OOV_BUCKETS = 1  # per vocabulary; unseen ids/values share it
ZIP_PREFIX_LENGTH = 2  # '85711' -> '85': ~100 regions, dense enough to learn
AGE_BUCKETS = 7
RELEASE_YEAR_BUCKETS = 10  # plus one bucket for "unknown year"
TITLE_TOKEN_MIN_COUNT = 2  # rarer title words go to the OOV bucket

# Categorical features that get a vocabulary (with OOV buckets).
VOCAB_FEATURES: Tuple[str, ...] = (USER_ID, MOVIE_ID, GENDER, OCCUPATION,
                                   ZIP_PREFIX, GENRES, TITLE_TOKENS)

# Sizes of the categorical features that get no vocabulary: the hour and
# day of the rating, and the buckets (release year: one more for unknown).
FIXED_SIZES: Dict[str, int] = {
    HOUR_OF_DAY: 24,
    DAY_OF_WEEK: 7,
    AGE_BUCKET: AGE_BUCKETS,
    RELEASE_YEAR_BUCKET: RELEASE_YEAR_BUCKETS + 1,
}


def transformed_name(key: str) -> str:
  """Name of Transform's output for `key`, e.g. 'user_id' -> 'user_id_xf'."""
  return f'{key}_xf'


def vocabulary_name(key: str) -> str:
  """File name of the vocabulary Transform computes for `key`."""
  return f'{key}_vocab'
