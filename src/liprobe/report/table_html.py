"""The study's table as a sortable, filterable HTML ``<table>``.

:func:`results_table_html` writes one row per table row (a run or a segment):
its label, laser energy, particle, coating, the ratios and proxies with their
1-sigma errors (:func:`liprobe.report.numbers.value_error`), the best phase and
the flags, each flag's reason in the flag cell's ``title`` (shown on hover).
:data:`SORT_SCRIPT` (a few lines of plain JavaScript, no plotting code, included
once in the page) makes each ``<th>`` sort the rows on click (numbers by value,
text alphabetically; a second click reverses; missing values always last) and the
text box above the table hide the rows that do not contain its text.

Hooks for tests and scripts: the table's ``id`` (``results-table`` by default),
each header's ``data-col`` (its column) and ``data-type`` (``num`` or ``text``),
each cell's ``data-sort`` (the number a numeric column sorts by, empty where
missing), each row's ``data-row`` (its label), and the table's ``data-sorted``
(``<col>:asc`` or ``<col>:desc`` after a click).
"""

from __future__ import annotations

import html

from .groups import flag_set, number
from .numbers import value_error

__all__ = ["SORT_SCRIPT", "results_columns", "results_table_html", "sortable_table_html"]

#: Columns of the results table, in order, where the study's table has them.
RESULT_COLUMNS = ("laser_pj", "particle", "coating", "material", "Li/(Li+Ni+Co+Mn)",
                  "Ni/(Ni+Co+Mn)", "O/(Li+O+Ni+Co+Mn)", "O2+/O+", "Mn++/Mn+",
                  "kingham_field_cr_v_nm", "detector_heterogeneity", "li_map_heterogeneity",
                  "best_phase", "flags")

#: Sorting and filtering of every ``table.sortable`` of the page (plain JavaScript).
SORT_SCRIPT = """<script>
(function () {
  function key(td, num) {
    if (!td) return null;
    var s = td.getAttribute("data-sort");
    if (s === null) s = td.textContent.trim();
    if (s === "" || s === "n/a") return null;
    if (num) { var x = parseFloat(s); return isNaN(x) ? null : x; }
    return s.toLowerCase();
  }
  function sortBy(table, th) {
    var col = th.cellIndex, num = th.getAttribute("data-type") === "num";
    var asc = th.getAttribute("aria-sort") !== "ascending";
    var heads = table.tHead.rows[0].cells;
    for (var i = 0; i < heads.length; i++) heads[i].removeAttribute("aria-sort");
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
    var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
    rows = rows.map(function (r, i) { return [key(r.cells[col], num), i, r]; });
    rows.sort(function (a, b) {
      if (a[0] === null || b[0] === null) {
        if (a[0] === null && b[0] === null) return a[1] - b[1];
        return a[0] === null ? 1 : -1;
      }
      var c = num ? (a[0] < b[0] ? -1 : (a[0] > b[0] ? 1 : 0))
                  : a[0].localeCompare(b[0], undefined, {numeric: true});
      return (asc ? c : -c) || a[1] - b[1];
    });
    rows.forEach(function (r) { body.appendChild(r[2]); });
    table.setAttribute("data-sorted", th.getAttribute("data-col") + (asc ? ":asc" : ":desc"));
  }
  function filter(table, text) {
    text = text.trim().toLowerCase();
    var rows = table.tBodies[0].rows;
    for (var i = 0; i < rows.length; i++) {
      var hit = !text || rows[i].textContent.toLowerCase().indexOf(text) >= 0;
      rows[i].style.display = hit ? "" : "none";
    }
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      th.addEventListener("click", function () { sortBy(table, th); });
    });
  });
  document.querySelectorAll("input.table-filter").forEach(function (box) {
    var table = document.getElementById(box.getAttribute("data-table"));
    if (table) box.addEventListener("input", function () { filter(table, box.value); });
  });
})();
</script>"""

_CSS = ("table.sortable th{cursor:pointer;user-select:none}"
        "table.sortable th[aria-sort=ascending]::after{content:' \\25B2'}"
        "table.sortable th[aria-sort=descending]::after{content:' \\25BC'}"
        "input.table-filter{margin:.3em 0;padding:2px 4px;min-width:18em}"
        "td.flagged{color:#a01818;font-weight:600;cursor:help}")


def _e(v) -> str:
    return html.escape("" if v is None else str(v))


def sortable_table_html(headers, rows, table_id: str, filter_label: str = "filter rows"
                        ) -> str:
    """A ``<table class="sortable">`` with a filter box above it (no script: the page
    includes :data:`SORT_SCRIPT` once).

    ``headers`` is ``[(column, text, type)]`` (type ``num`` or ``text``); each row is
    ``(label, cells)`` with one cell per header, a cell a dict with ``text`` (shown),
    ``sort`` (a number, or None: missing, sorted last) and optional ``title`` and
    ``cls``.
    """
    head = "".join(f'<th data-col="{_e(c)}" data-type="{_e(t)}" title="sort by {_e(text)}">'
                   f"{_e(text)}</th>" for c, text, t in headers)
    body = []
    for label, cells in rows:
        tds = []
        for cell in cells:
            s = cell.get("sort")
            attrs = f' data-sort="{"" if s is None else _e(s)}"'
            if cell.get("title"):
                attrs += f' title="{_e(cell["title"])}"'
            cls = cell.get("cls") or ("na" if cell.get("text") in (None, "", "n/a") else "")
            if cls:
                attrs += f' class="{_e(cls)}"'
            text = cell.get("text")
            tds.append(f"<td{attrs}>{_e('n/a' if text in (None, '') else text)}</td>")
        body.append(f'<tr data-row="{_e(label)}">' + "".join(tds) + "</tr>")
    return (f"<style>{_CSS}</style>"
            f'<label>{_e(filter_label)}: <input type="search" class="table-filter" '
            f'id="{_e(table_id)}-filter" data-table="{_e(table_id)}" '
            'placeholder="text in a row"></label>'
            f'<div class="wide"><table class="sortable" id="{_e(table_id)}" '
            f'data-rows="{len(rows)}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


def results_columns(table, fda_col: str | None = None) -> list:
    """The columns the results table shows, in order: those of :data:`RESULT_COLUMNS`
    (the Li mu column ``fda_col`` after the field proxies), the study's other ratios and
    mu columns, that ``table`` has with a value in at least one row (``flags`` always)."""
    wanted = list(RESULT_COLUMNS)
    if fda_col:
        wanted.insert(wanted.index("detector_heterogeneity"), fda_col)
    # ratios and proxies of a study that is not the paper's (Si/(Si+O), Si++/Si+ ...)
    extra = [c for c in table.columns if isinstance(c, str) and not c.endswith("_err")
             and not c.startswith(("grain_", "flag_", "fda_mu_shuffled_"))
             and ("/" in c or c.startswith("fda_mu_")) and c not in wanted]
    at = wanted.index("best_phase")
    wanted[at:at] = extra
    return [c for c in dict.fromkeys(wanted) if c in table
            and (c == "flags" or any(_present(v) for v in table[c]))]


def _present(v) -> bool:
    """A cell that holds something: a finite number or non-empty text."""
    return number(v) is not None or (isinstance(v, str) and bool(v))


def results_table_html(table, fda_col: str | None = None, table_id: str = "results-table"
                       ) -> str:
    """The study's table, one row per run or segment, as a sortable, filterable HTML table.

    Values with a ``<column>_err`` are printed with it (:func:`value_error`) and sort by
    the value; the flags cell's ``title`` holds each flag's reason
    (:func:`liprobe.report.flagtext.flag_sentences`), one per line.
    """
    from .flagtext import flag_sentences
    from .sources import row_label

    cols = results_columns(table, fda_col)
    headers = [("row", "row", "text")]
    for c in cols:
        numeric = c not in ("particle", "coating", "material", "best_phase", "flags")
        text = c + (" ± 1σ" if f"{c}_err" in table else "")
        if c == "laser_pj":
            text = "laser energy (pJ)"
        headers.append((c, text, "num" if numeric else "text"))
    rows = []
    for _, r in table.iterrows():
        label = row_label(r)
        rd = r.to_dict()
        cells = [{"text": label, "sort": label}]
        for c in cols:
            v = rd.get(c)
            if c == "flags":
                flags = sorted(flag_set(v))
                cells.append({"text": ", ".join(flags) or "none",
                              "sort": ", ".join(flags) or None,
                              "title": "\n".join(flag_sentences(rd)) if flags else None,
                              "cls": "flagged" if flags else None})
                continue
            x = number(v)
            if x is None:
                text = v if isinstance(v, str) and v else None
                cells.append({"text": text, "sort": text})
                continue
            cells.append({"text": value_error(x, rd.get(f"{c}_err"), column=c),
                          "sort": repr(x)})
        rows.append((label, cells))
    return sortable_table_html(headers, rows, table_id)
