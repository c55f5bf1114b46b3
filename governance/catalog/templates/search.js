// Client-side search over the embedded index: every word of the query must occur in a product's
// names, descriptions, columns, tags or owners; the filters narrow by domain, classification, status.
// `index.html?q=cpf&domain=customers` applies a search on load. No network, no libraries.
(function () {
  "use strict";
  var index = JSON.parse(document.getElementById("catalog-index").textContent);
  var form = document.getElementById("search");
  var fields = ["q", "domain", "classification", "status"].map(function (name) { return form.elements[name]; });
  var items = {};
  document.querySelectorAll("li.product").forEach(function (li) { items[li.getAttribute("data-ref")] = li; });

  function apply() {
    var words = fields[0].value.toLowerCase().split(/\s+/).filter(Boolean);
    var domain = fields[1].value, level = fields[2].value, status = fields[3].value, shown = 0;
    index.forEach(function (p) {
      var li = items[p.ref];
      var ok = words.every(function (w) { return p.text.indexOf(w) >= 0; }) &&
        (!domain || p.domain === domain) && (!level || p.classifications.indexOf(level) >= 0) &&
        (!status || p.status === status);
      var hits = p.columns.filter(function (c) {
        return words.some(function (w) { return c.toLowerCase().indexOf(w) >= 0; });
      });
      li.hidden = !ok;
      li.querySelector(".hits").textContent = ok && hits.length ? "Matching columns: " + hits.join(", ") : "";
      shown += ok ? 1 : 0;
    });
    document.getElementById("count").textContent = shown + " of " + index.length + " products";
  }

  var params = new URLSearchParams(window.location.search);
  fields.forEach(function (el) {
    if (params.has(el.name)) { el.value = params.get(el.name); }
    el.addEventListener("input", apply);
    el.addEventListener("change", apply);
  });
  form.addEventListener("submit", function (event) { event.preventDefault(); apply(); });
  apply();
}());
