// Lakehouse console: Ctrl/Cmd+Enter in the SQL box runs the query. Pages work without it.
document.addEventListener("keydown", (e) => {
  if ((e.ctrlKey || e.metaKey) && e.key === "Enter" && e.target.name === "q") {
    e.target.form.submit();
  }
});
