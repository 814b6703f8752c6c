/* Support console: copy the provider id; show times in the agent's own zone on request. */
(function () {
  "use strict";

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "absolute";
    area.style.left = "-9999px";
    document.body.appendChild(area);
    area.select();
    document.execCommand("copy");
    document.body.removeChild(area);
    return Promise.resolve();
  }

  document.addEventListener("click", function (event) {
    const button = event.target.closest(".sms-copy");
    if (!button) return;
    const status = button.parentElement.querySelector(".sms-copied");
    copyText(button.dataset.copy).then(
      function () { if (status) status.textContent = "Copied"; },
      function () { if (status) status.textContent = "Copy failed: select the id instead"; }
    );
  });

  function fillAgentTimes() {
    const format = new Intl.DateTimeFormat(undefined, {
      hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false, timeZoneName: "short",
      month: "short", day: "numeric",
    });
    document.querySelectorAll("td.sms-agent-time[data-utc]").forEach(function (cell) {
      cell.textContent = format.format(new Date(cell.dataset.utc));
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    const toggle = document.getElementById("show-agent-time");
    if (!toggle) return;
    const table = document.querySelector(".sms-events");
    const key = "sms-delivery-show-agent-time";
    function apply() {
      table.classList.toggle("sms-show-agent-time", toggle.checked);
      try { localStorage.setItem(key, toggle.checked ? "1" : ""); } catch (e) { /* private mode */ }
    }
    try { toggle.checked = localStorage.getItem(key) === "1"; } catch (e) { /* private mode */ }
    fillAgentTimes();
    apply();
    toggle.addEventListener("change", apply);
  });
})();
