/* Runs in <head>, before the first paint: pick light or dark so the page never flashes.
 * The signed-in user's saved preference (data-theme-preference) wins; otherwise localStorage. */
(function () {
  "use strict";
  var KEY = "fedele-theme";
  var root = document.documentElement;
  var media = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;

  function read() {
    try { return window.localStorage.getItem(KEY); } catch (error) { return null; }
  }
  function write(value) {
    try { window.localStorage.setItem(KEY, value); } catch (error) { /* private mode */ }
  }
  function valid(value) {
    return value === "auto" || value === "light" || value === "dark";
  }
  function resolve(preference) {
    if (preference === "auto") return media && media.matches ? "dark" : "light";
    return preference;
  }
  function apply(preference) {
    if (!valid(preference)) preference = "auto";
    root.setAttribute("data-theme-preference", preference);
    root.setAttribute("data-bs-theme", resolve(preference));
    return preference;
  }

  var server = root.getAttribute("data-theme-preference");
  var preference = valid(server) ? server : read();
  preference = apply(preference);
  if (valid(server)) write(server);

  if (media && media.addEventListener) {
    media.addEventListener("change", function () {
      if (root.getAttribute("data-theme-preference") === "auto") apply("auto");
    });
  }

  window.fedeleTheme = {
    key: KEY,
    get: function () { return root.getAttribute("data-theme-preference") || "auto"; },
    set: function (value) { write(apply(value)); return value; },
  };
})();
