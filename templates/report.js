"use strict";
// Sorting and filtering for the report's tables. No network, no dependencies.
(function () {
  function cellKey(row, index) {
    var cell = row.cells[index];
    if (!cell) { return ""; }
    return cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent.trim();
  }
  function compare(a, b, numeric) {
    if (a === b) { return 0; }
    if (a === "") { return -1; }
    if (b === "") { return 1; }
    if (numeric) {
      var x = Number(a), y = Number(b);
      if (x !== y) { return x < y ? -1 : 1; }
      return 0;
    }
    return a.localeCompare(b, undefined, { numeric: true, sensitivity: "base" });
  }
  function sortTable(table, th, index) {
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    var numeric = th.getAttribute("data-kind") === "num";
    var headers = table.tHead.rows[0].cells;
    for (var h = 0; h < headers.length; h++) { headers[h].removeAttribute("aria-sort"); }
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    // Decorate with the original position so equal keys keep their order (stable sort).
    var keyed = rows.map(function (row, position) {
      return { row: row, key: cellKey(row, index), position: position };
    });
    keyed.sort(function (p, q) {
      var c = compare(p.key, q.key, numeric);
      if (!ascending) { c = -c; }
      return c !== 0 ? c : p.position - q.position;
    });
    var fragment = document.createDocumentFragment();
    keyed.forEach(function (item) { fragment.appendChild(item.row); });
    body.appendChild(fragment);
  }
  function rowsWord(n) {
    return n.toLocaleString("en") + (n === 1 ? " row" : " rows");
  }
  // A row shows when it matches the filter and, unless "show all" is ticked, needs attention.
  function filterTable(id) {
    var table = document.getElementById(id + "-table");
    var counter = document.getElementById(id + "-count");
    var input = document.querySelector("input.table-filter[data-table='" + id + "']");
    var all = document.querySelector("input.show-all[data-table='" + id + "']");
    if (!table) { return; }
    var query = input ? input.value.trim().toLowerCase() : "";
    var showQuiet = !all || all.checked;
    var rows = table.tBodies[0].rows;
    var shown = 0;
    for (var i = 0; i < rows.length; i++) {
      var wanted = showQuiet || !rows[i].classList.contains("quiet");
      var match = wanted && (query === "" || rows[i].textContent.toLowerCase().indexOf(query) !== -1);
      rows[i].hidden = !match;
      if (match) { shown++; }
    }
    if (counter) {
      counter.textContent = shown === rows.length ? rowsWord(shown) + " shown"
        : shown.toLocaleString("en") + " of " + rowsWord(rows.length) + " shown";
    }
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var headers = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(headers, function (th, index) {
      var button = th.querySelector("button.sort");
      if (button) {
        button.addEventListener("click", function () { sortTable(table, th, index); });
      }
    });
  });
  document.querySelectorAll("input.table-filter").forEach(function (input) {
    input.addEventListener("input", function () { filterTable(input.getAttribute("data-table")); });
  });
  document.querySelectorAll("input.show-all").forEach(function (box) {
    box.addEventListener("change", function () { filterTable(box.getAttribute("data-table")); });
  });
})();
