// Times are rendered in UTC; hovering one shows it in the browser's local time too. Nothing else needs JavaScript.
document.querySelectorAll("time[datetime]").forEach(function (el) {
  var when = new Date(el.getAttribute("datetime"));
  if (!isNaN(when)) { el.title = el.textContent + " = " + when.toLocaleString() + " local"; }
});
