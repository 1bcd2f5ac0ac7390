"""A self-contained HTML report of a pipeline run: data, training,
evaluation, recommendations and the run itself (docs/report.md).

    import report
    path = report.build('outputs')  # outputs/report/index.html
"""

from typing import Optional


def build(output_dir: str, report_path: Optional[str] = None) -> str:
  """Writes <output_dir>/report/index.html (see `report.builder.build`)."""
  from report import builder  # pylint: disable=g-import-not-at-top
  return builder.build(output_dir, report_path)
