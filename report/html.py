"""The report's HTML: sections, tables and the page around them.

One self-contained file: styles inline, plots inline SVG, the numbers the
page shows also inline as JSON (`<script type="application/json"
id="report-data">`) for tools and tests. No script or font is fetched.

Plain Python, no TensorFlow.
"""

import dataclasses
import html
import json
import math
from typing import Dict, List, Optional, Sequence

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
margin:0 auto;max-width:1200px;padding:0 24px 48px;color:#222}
h1{margin:24px 0 4px}h2{border-bottom:2px solid #ddd;padding-top:16px}
nav a{margin-right:14px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:14px}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
.missing{background:#fff4e5;border-left:4px solid #f0a020;padding:6px 10px}
.pass{color:#137333}.fail{color:#c5221f}.note{color:#555;font-size:13px}
figure{margin:8px 0 16px}figure svg{max-width:100%;height:auto}
.row{display:flex;flex-wrap:wrap;gap:16px}.row>*{flex:1 1 480px}
code,pre{background:#f6f6f6;padding:1px 4px}pre{padding:8px;overflow:auto}
"""


def escape(value) -> str:
  return html.escape(str(value), quote=True)


def number(value, digits: int = 4) -> str:
  """A number as the report prints it: integers with thousands separators,
  floats to `digits` significant decimals, None as an em dash."""
  if value is None:
    return '\u2014'
  if isinstance(value, bool):
    return str(value)
  if isinstance(value, int) or (isinstance(value, float) and
                                value.is_integer() and abs(value) >= 1000):
    return f'{int(value):,}'
  if isinstance(value, float):
    if math.isnan(value) or math.isinf(value):
      return str(value)
    return f'{value:.{digits}f}'
  return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]],
          table_id: str = '') -> str:
  """An HTML table; numbers right-aligned and formatted by `number`."""
  head = ''.join(f'<th>{escape(h)}</th>' for h in headers)
  body = []
  for row in rows:
    cells = []
    for cell in row:
      if isinstance(cell, Raw):
        cells.append(f'<td>{cell.html}</td>')
      elif isinstance(cell, (int, float)) and not isinstance(cell, bool):
        cells.append(f'<td class="num">{escape(number(cell))}</td>')
      else:
        cells.append(f'<td>{escape(number(cell))}</td>')
    body.append('<tr>' + ''.join(cells) + '</tr>')
  attribute = f' id="{escape(table_id)}"' if table_id else ''
  return (f'<table{attribute}><thead><tr>{head}</tr></thead><tbody>' +
          ''.join(body) + '</tbody></table>')


@dataclasses.dataclass
class Raw:
  """HTML that `table` and `Section` insert as is (already escaped)."""
  html: str


def missing(text: str) -> str:
  """A notice that something the section would show is not there."""
  return f'<p class="missing">{escape(text)}</p>'


def paragraph(text: str, css_class: str = '') -> str:
  attribute = f' class="{css_class}"' if css_class else ''
  return f'<p{attribute}>{escape(text)}</p>'


def figure(svg: str, caption: str) -> str:
  return (f'<figure>{svg}<figcaption class="note">{escape(caption)}'
          '</figcaption></figure>')


@dataclasses.dataclass
class Section:
  """One section of the report: its id, title, body HTML, and the numbers
  it shows (inlined as JSON under its id)."""
  id: str
  title: str
  parts: List[str] = dataclasses.field(default_factory=list)
  data: Dict[str, object] = dataclasses.field(default_factory=dict)
  missing: List[str] = dataclasses.field(default_factory=list)

  def add(self, part: str) -> None:
    self.parts.append(part)

  def note_missing(self, text: str) -> None:
    """Records and shows what is missing."""
    self.missing.append(text)
    self.parts.append(missing(text))

  def render(self) -> str:
    return (f'<section id="{escape(self.id)}"><h2>{escape(self.title)}</h2>'
            + '\n'.join(self.parts) + '</section>')


def page(title: str, subtitle: str, sections: Sequence[Section],
         data: Optional[Dict[str, object]] = None) -> str:
  """The whole document."""
  nav = ' '.join(f'<a href="#{escape(s.id)}">{escape(s.title)}</a>'
                 for s in sections)
  payload = dict(data or {})
  payload['sections'] = {s.id: {'data': s.data, 'missing': s.missing}
                         for s in sections}
  # '</' cannot end the script element early once escaped.
  inline = json.dumps(payload, default=str, sort_keys=True).replace(
      '</', '<\\/')
  return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
          f'<meta name="viewport" content="width=device-width">'
          f'<title>{escape(title)}</title><style>{_STYLE}</style></head>'
          f'<body><h1>{escape(title)}</h1><p class="note">{escape(subtitle)}'
          f'</p><nav>{nav}</nav>\n' +
          '\n'.join(s.render() for s in sections) +
          f'\n<script type="application/json" id="report-data">{inline}'
          '</script></body></html>\n')
