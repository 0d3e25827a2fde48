// Between 960 and 1440 px the page's table of contents is hidden to give the article the room (mmlesson.css);
// the header's "Contents" button then shows it over the right margin, and a second click (or Escape) hides it.
document.addEventListener("DOMContentLoaded", () => {
  const middle = window.matchMedia("(min-width: 960px) and (max-width: 1439.98px)");
  const toggle = (event) => {
    if (!middle.matches) return;  // narrow and wide screens: the theme's own behaviour
    event.preventDefault();
    event.stopImmediatePropagation();
    document.body.classList.toggle("mmlesson-toc-open");
  };
  document.querySelectorAll(".bd-header-article .secondary-toggle").forEach((button) => {
    button.addEventListener("click", toggle, true);
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") document.body.classList.remove("mmlesson-toc-open");
  });
});
