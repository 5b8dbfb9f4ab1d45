// scenarist dashboard: progressive enhancement over server-rendered pages. Without this
// script every page still works (links, forms, ?task= deep links); with it, tables refresh
// and the task graph follows the scenario's event stream.
"use strict";

const REFRESH_MS = 2000;
const TIMELINE_TICK_MS = 1000;  // running bars grow between events
const ICONS = {
  pending: "○", queued: "◔", processing: "◐", running: "▶",
  success: "✓", failed: "✗", skipped: "↷", cancelled: "⊘",
};

async function fetchFragment(url) {
  const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
  if (!response.ok) throw new Error(`${response.status} from ${url}`);
  return response.text();
}

// --- tables that refresh themselves (scenario list, queues) ---------------------------

function startTableRefresh() {
  for (const table of document.querySelectorAll("table[data-refresh]")) {
    const body = table.querySelector("tbody");
    const url = table.dataset.refresh;
    const tick = async () => {
      if (document.hidden) return;
      try {
        body.innerHTML = await fetchFragment(url);
        table.removeAttribute("data-stale");
      } catch (err) {
        table.setAttribute("data-stale", "true");  // keep the last rows; try again later
      }
    };
    setInterval(tick, REFRESH_MS);
  }
}

// --- scenario page --------------------------------------------------------------------

class ScenarioPage {
  constructor(root) {
    this.root = root;
    this.id = root.dataset.scenarioId;
    this.base = `/ui/scenarios/${encodeURIComponent(this.id)}`;
    this.panel = document.getElementById("task-panel");
    this.summary = document.getElementById("summary");
    this.liveState = document.getElementById("live-state");
    this.summaryTimer = null;
    this.timelineBox = document.getElementById("timeline-box");
    this.timelineTimer = null;
    this.timelineTick = null;
    this.selected = new URL(location.href).searchParams.get("task");
    this.bindGraph();
    this.bindPanel();
    this.bindTimeline();
    this.markSelected();
    window.addEventListener("popstate", () => this.followAddress());
    if (root.dataset.final !== "true") {
      this.listen(root.dataset.after);
      this.timelineTick = setInterval(() => { if (!document.hidden) this.refreshTimeline(); }, TIMELINE_TICK_MS);
    }
  }

  // --- timeline: bars are buttons; Enter/Space/click open the task, arrows move ---------

  bars() { return this.timelineBox ? Array.from(this.timelineBox.querySelectorAll("g.tl-task")) : []; }

  bindTimeline() {
    if (!this.timelineBox) return;
    this.timelineBox.addEventListener("click", (event) => {
      const bar = event.target.closest("g.tl-task");
      if (bar) this.select(bar.dataset.task, true);
    });
    this.timelineBox.addEventListener("keydown", (event) => {
      const bar = event.target.closest("g.tl-task");
      if (!bar) return;
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        this.select(bar.dataset.task, true);
        return;
      }
      const bars = this.bars();
      const at = bars.indexOf(bar);
      const step = { ArrowDown: 1, ArrowUp: -1 }[event.key];
      if (step && bars[at + step]) {
        event.preventDefault();
        bars[at + step].focus();
      }
    });
  }

  refreshTimelineSoon() {
    clearTimeout(this.timelineTimer);
    this.timelineTimer = setTimeout(() => this.refreshTimeline(), 250);
  }

  async refreshTimeline() {
    if (!this.timelineBox) return;
    const focused = document.activeElement && document.activeElement.closest
      ? document.activeElement.closest("g.tl-task") : null;
    try {
      this.timelineBox.innerHTML = await fetchFragment(`${this.base}/timeline`);
    } catch (err) {
      this.liveState.textContent = `Could not refresh the timeline: ${err.message}`;
      return;
    }
    this.markSelected();
    if (focused) {
      const again = this.timelineBox.querySelector(`g.tl-task[data-task="${CSS.escape(focused.dataset.task)}"]`);
      if (again) again.focus();
    }
    const svg = this.timelineBox.querySelector("svg.timeline");
    if (svg && svg.dataset.live !== "true" && this.timelineTick) {
      clearInterval(this.timelineTick);
      this.timelineTick = null;
    }
  }

  nodes() { return Array.from(this.root.querySelectorAll("g.node")); }

  node(name) {
    return this.root.querySelector(`g.node[data-task="${CSS.escape(name)}"]`);
  }

  bindGraph() {
    for (const node of this.nodes()) {
      node.addEventListener("click", () => this.select(node.dataset.task, true));
      node.addEventListener("keydown", (event) => this.onNodeKey(event, node));
    }
  }

  bindPanel() {
    this.panel.addEventListener("click", (event) => {
      if (event.target.closest(".close-panel")) this.close(true);
    });
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && this.selected) this.close(true);
    });
  }

  onNodeKey(event, node) {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      this.select(node.dataset.task, true);
      return;
    }
    const target = this.neighbour(node, event.key);
    if (target) {
      event.preventDefault();
      target.focus();
    }
  }

  // Arrow keys: up/down within a level, left/right to the nearest task of the next level.
  neighbour(node, key) {
    const level = Number(node.dataset.level);
    const row = Number(node.dataset.row);
    const at = (l) => this.nodes().filter((n) => Number(n.dataset.level) === l);
    const nearest = (candidates) => candidates.reduce((best, n) =>
      !best || Math.abs(Number(n.dataset.row) - row) < Math.abs(Number(best.dataset.row) - row) ? n : best, null);
    if (key === "ArrowUp") return at(level).find((n) => Number(n.dataset.row) === row - 1);
    if (key === "ArrowDown") return at(level).find((n) => Number(n.dataset.row) === row + 1);
    if (key === "ArrowRight") return nearest(at(level + 1));
    if (key === "ArrowLeft") return nearest(at(level - 1));
    return null;
  }

  async select(name, remember) {
    this.selected = name;
    this.markSelected();
    if (remember) this.setAddress(name);
    try {
      this.panel.innerHTML = await fetchFragment(`${this.base}/tasks/${encodeURIComponent(name)}`);
    } catch (err) {
      this.panel.textContent = `Could not load task ${name}: ${err.message}`;
    }
  }

  close(remember) {
    const previous = this.selected && this.node(this.selected);
    this.selected = null;
    this.markSelected();
    this.panel.innerHTML = '<p class="hint">No task selected.</p>';
    if (remember) this.setAddress(null);
    if (previous) previous.focus();
  }

  followAddress() {
    const name = new URL(location.href).searchParams.get("task");
    if (name) this.select(name, false); else this.close(false);
  }

  setAddress(name) {
    const url = new URL(location.href);
    url.searchParams.delete("notice");
    if (name) url.searchParams.set("task", name); else url.searchParams.delete("task");
    history.pushState({ task: name }, "", url);
  }

  markSelected() {
    for (const node of this.nodes()) {
      node.classList.toggle("selected", node.dataset.task === this.selected);
    }
    for (const bar of this.bars()) {
      bar.classList.toggle("selected", bar.dataset.task === this.selected);
    }
  }

  listen(after) {
    const url = after ? `${this.base}/events?after=${encodeURIComponent(after)}` : `${this.base}/events`;
    const source = new EventSource(url);
    source.addEventListener("open", () => { this.liveState.textContent = "Live: following the scenario's events."; });
    source.addEventListener("status", (event) => this.onStatus(JSON.parse(event.data)));
    source.addEventListener("progress", () => { this.refreshSummarySoon(); this.refreshTimelineSoon(); });
    source.addEventListener("end", (event) => {
      source.close();  // final: nothing more will happen, so do not reconnect
      const data = JSON.parse(event.data);
      this.setScenarioStatus(data.status);
      this.refreshSummarySoon();
      this.refreshTimelineSoon();
      this.liveState.textContent = `Scenario ended: ${data.status}.`;
    });
    source.addEventListener("error", () => {
      if (source.readyState !== EventSource.CLOSED) this.liveState.textContent = "Connection lost; reconnecting…";
    });
  }

  onStatus(data) {
    if (!data.task) {
      this.setScenarioStatus(data.status);
      return;
    }
    const node = this.node(data.task);
    if (!node) return;
    const service = node.dataset.service;
    node.classList.remove(`status-${node.dataset.status}`);
    node.classList.add(`status-${data.status}`);
    node.dataset.status = data.status;
    node.querySelector(".node-icon").textContent = ICONS[data.status] || "•";
    node.querySelector(".node-label").textContent = data.status;
    node.querySelector("title").textContent = `${data.task} (${service}): ${data.status}`;
    node.setAttribute("aria-label", `${data.task}, ${service}, ${data.status}`);
    if (data.task === this.selected) this.select(data.task, false);
  }

  setScenarioStatus(status) {
    const badge = document.querySelector("#scenario-status .badge");
    badge.className = `badge status-${status}`;
    badge.innerHTML = "";
    const icon = document.createElement("span");
    icon.className = "icon";
    icon.setAttribute("aria-hidden", "true");
    icon.textContent = ICONS[status] || "•";
    badge.append(icon, ` ${status}`);
  }

  // Progress events come in bursts; one summary fetch per burst is enough.
  refreshSummarySoon() {
    clearTimeout(this.summaryTimer);
    this.summaryTimer = setTimeout(async () => {
      try {
        this.summary.innerHTML = await fetchFragment(`${this.base}/summary`);
      } catch (err) {
        this.liveState.textContent = `Could not refresh the progress: ${err.message}`;
      }
    }, 250);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  startTableRefresh();
  const scenario = document.getElementById("scenario");
  if (scenario) window.scenarioPage = new ScenarioPage(scenario);
});
