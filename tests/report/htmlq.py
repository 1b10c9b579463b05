"""Just enough of an HTML reader for report tests (stdlib only): ids, links, external sources,
rows of each table by id, and the text of elements by id."""

from __future__ import annotations

from html.parser import HTMLParser

VOID = {"meta", "link", "img", "br", "hr", "input", "source", "col", "wbr", "area", "base"}


class Page(HTMLParser):
    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.ids: list[str] = []
        self.hrefs: list[str] = []
        self.sources: list[tuple[str, str, str]] = []  # (tag, attribute, value) of src/href
        self.tables: dict[str, list[list[str]]] = {}
        self.texts: dict[str, str] = {}
        self.metas: list[dict] = []
        self.scripts: dict[str, str] = {}
        self.tags: list[str] = []
        self._stack: list[tuple[str, str | None]] = []
        self._table: list[str | None] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._open_ids: list[str] = []
        self._buf: dict[str, list[str]] = {}
        self._script: str | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if "id" in a:
            self.ids.append(a["id"])
        for key in ("src", "href", "action", "data", "xlink:href"):
            if key in a and a[key] is not None:
                self.sources.append((tag, key, a[key]))
        if tag == "a" and a.get("href"):
            self.hrefs.append(a["href"])
        if tag == "meta":
            self.metas.append(a)
        if tag == "script":
            self._script = a.get("id") or f"script-{len(self.scripts)}"
            self.scripts[self._script] = ""
        if tag == "table":
            self._table.append(a.get("id"))
            if a.get("id"):
                self.tables[a["id"]] = []
        if tag == "tr" and self._table:
            self._row = []
        if tag in ("td", "th") and self._row is not None:
            self._cell = []
        if tag not in VOID:
            self._stack.append((tag, a.get("id")))
            if a.get("id"):
                self._open_ids.append(a["id"])
                self._buf[a["id"]] = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        if tag == "tr" and self._row is not None:
            if self._table and self._table[-1]:
                self.tables[self._table[-1]].append(self._row)
            self._row = None
        if tag == "table" and self._table:
            self._table.pop()
        if tag == "script":
            self._script = None
        while self._stack:
            t, i = self._stack.pop()
            if i:
                self.texts[i] = "".join(self._buf.pop(i, []))
                self._open_ids.remove(i)
            if t == tag:
                break

    def handle_data(self, data):
        if self._script:
            self.scripts[self._script] += data
        if self._cell is not None:
            self._cell.append(data)
        for i in self._open_ids:
            self._buf[i].append(data)

    def rows(self, table_id: str) -> list[list[str]]:
        """Body rows (the first row, the header, left out)."""
        return self.tables.get(table_id, [])[1:]
