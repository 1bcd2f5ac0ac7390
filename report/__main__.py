"""`python -m report --output-dir outputs`: writes and prints the report's
path (last line of the output)."""

import argparse
import os
import sys
from typing import Optional, Sequence

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(
      prog='python -m report',
      description='Writes <output-dir>/report/index.html, a self-contained '
      'HTML report of the latest pipeline run.')
  parser.add_argument('--output-dir', default='outputs',
                      help='the runner\'s --output-dir (default: outputs)')
  parser.add_argument('--report-path', default=None,
                      help='where to write (default: '
                      '<output-dir>/report/index.html)')
  args = parser.parse_args(argv)
  import report  # pylint: disable=g-import-not-at-top
  path = report.build(args.output_dir, args.report_path)
  print(path, flush=True)
  return 0


if __name__ == '__main__':
  sys.exit(main())
