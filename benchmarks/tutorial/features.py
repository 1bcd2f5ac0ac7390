"""Feature keys and vocabulary names shared by the CSV writer, Transform and
the Trainer of the tutorial pipeline."""

USER_ID = 'user_id'
MOVIE_TITLE = 'movie_title'
CSV_COLUMNS = (USER_ID, MOVIE_TITLE)


def vocabulary_name(key: str) -> str:
  """The name Transform saves the vocabulary of `key` under."""
  return f'{key}_vocab'
