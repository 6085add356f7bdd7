// On a narrow screen, a table that does not fit its column is shown as one
// card per row (see raincheck.css): a sideways-scrolling table hides the
// columns a reader came for. Wide screens get every table as written.
(function () {
  "use strict";
  var narrow = window.matchMedia("(max-width: 48em)");

  function label(table) {
    var head = table.tHead;
    if (!head || head.rows.length === 0) return;
    var names = Array.prototype.map.call(head.rows[head.rows.length - 1].cells, function (cell) {
      return cell.textContent.trim();
    });
    Array.prototype.forEach.call(table.tBodies, function (body) {
      Array.prototype.forEach.call(body.rows, function (row) {
        Array.prototype.forEach.call(row.cells, function (cell, i) {
          cell.setAttribute("data-label", names[i] || "");
        });
      });
    });
  }

  function fit() {
    document.querySelectorAll("article table.docutils").forEach(function (table) {
      table.classList.remove("stacked");
      if (!narrow.matches) return;
      var box = table.closest(".table-wrapper") || table.parentElement;
      if (box.scrollWidth > box.clientWidth + 1) {
        label(table);
        table.classList.add("stacked");
      }
    });
  }

  document.addEventListener("DOMContentLoaded", fit);
  narrow.addEventListener("change", fit);
  window.addEventListener("resize", fit);
})();
