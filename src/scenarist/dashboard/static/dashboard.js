// scenarist dashboard: progressive enhancement over server-rendered pages. Without this
// script every page still works (links, forms, ?task= deep links); with it, tables refresh
// and the task graph follows the scenario's event stream.
"use strict";

const REFRESH_MS = 2000;
const GROUP_REFRESH_MS = 1500;  // at most one read of a scenario's group counts per interval
const SVG_NS = "http://www.w3.org/2000/svg";
const STATUSES = ["pending", "queued", "processing", "success", "failed", "skipped", "cancelled"];
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
    this.groupTimer = null;
    const address = new URL(location.href).searchParams;
    this.selected = address.get("task");
    this.selectedGroup = this.selected ? null : address.get("group");
    this.groupCursor = this.selectedGroup ? address.get("cursor") : null;
    this.timelineBox = document.getElementById("timeline-box");
    this.timelineTimer = null;
    this.timelineTick = null;
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
      if (bar) this.openBar(bar);
    });
    this.timelineBox.addEventListener("keydown", (event) => {
      const bar = event.target.closest("g.tl-task");
      if (!bar) return;
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        this.openBar(bar);
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

  // A big group's one bar opens the group's panel, as its DAG node does.
  openBar(bar) {
    if (bar.dataset.group) this.openGroup(bar.dataset.group, null, true);
    else this.select(bar.dataset.task, true);
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

  groupNode(name) {
    return name ? this.root.querySelector(`g.node[data-group="${CSS.escape(name)}"]`) : null;
  }

  // `shot_12` -> "shot": the copies of one template task (count or for_each) share it.
  static groupOf(name) {
    const match = /^(.+)_[1-9][0-9]*$/.exec(name || "");
    return match ? match[1] : null;
  }

  open(node) {
    if (node.dataset.group) this.openGroup(node.dataset.group, null, true);
    else this.select(node.dataset.task, true);
  }

  bindGraph() {
    for (const node of this.nodes()) {
      node.addEventListener("click", () => this.open(node));
      node.addEventListener("keydown", (event) => this.onNodeKey(event, node));
    }
  }

  bindPanel() {
    this.panel.addEventListener("click", (event) => {
      if (event.target.closest(".close-panel")) {
        this.close(true);
        return;
      }
      // Links inside a group's panel: an instance, or another page of the group.
      const instance = event.target.closest("a[data-task]");
      const page = event.target.closest("a[data-group-page]");
      if (instance) {
        event.preventDefault();
        this.select(instance.dataset.task, true);
      } else if (page) {
        event.preventDefault();
        this.openGroup(this.selectedGroup, page.dataset.groupPage || null, true, true);
      }
    });
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && (this.selected || this.selectedGroup)) this.close(true);
    });
  }

  onNodeKey(event, node) {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      this.open(node);
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
    this.selectedGroup = null;
    this.markSelected();
    if (remember) this.setAddress({ task: name });
    try {
      this.panel.innerHTML = await fetchFragment(`${this.base}/tasks/${encodeURIComponent(name)}`);
    } catch (err) {
      this.panel.textContent = `Could not load task ${name}: ${err.message}`;
    }
  }

  // A group's panel: its counts and one page of its instances (`cursor` null: the first).
  async openGroup(name, cursor, remember, focusPanel) {
    this.selected = null;
    this.selectedGroup = name;
    this.groupCursor = cursor;
    this.markSelected();
    if (remember) this.setAddress({ group: name, cursor });
    await this.loadGroupPanel();
    if (focusPanel) {
      const heading = this.panel.querySelector("h2");
      if (heading) { heading.tabIndex = -1; heading.focus(); }
    }
  }

  async loadGroupPanel() {
    const name = this.selectedGroup;
    const query = this.groupCursor ? `?cursor=${encodeURIComponent(this.groupCursor)}` : "";
    try {
      const html = await fetchFragment(`${this.base}/groups/${encodeURIComponent(name)}${query}`);
      if (this.selectedGroup === name) this.panel.innerHTML = html;
    } catch (err) {
      this.panel.textContent = `Could not load group ${name}: ${err.message}`;
    }
  }

  close(remember) {
    const previous = (this.selected && this.node(this.selected))
      || this.groupNode(this.selectedGroup || ScenarioPage.groupOf(this.selected));
    this.selected = null;
    this.selectedGroup = null;
    this.markSelected();
    this.panel.innerHTML = '<p class="hint">No task selected.</p>';
    if (remember) this.setAddress({});
    if (previous) previous.focus();
  }

  followAddress() {
    const address = new URL(location.href).searchParams;
    const name = address.get("task");
    const group = address.get("group");
    if (name) this.select(name, false);
    else if (group) this.openGroup(group, address.get("cursor"), false);
    else this.close(false);
  }

  setAddress({ task = null, group = null, cursor = null }) {
    const url = new URL(location.href);
    for (const key of ["notice", "task", "group", "cursor"]) url.searchParams.delete(key);
    if (task) url.searchParams.set("task", task);
    if (group) url.searchParams.set("group", group);
    if (group && cursor) url.searchParams.set("cursor", cursor);
    history.pushState({ task, group, cursor }, "", url);
  }

  markSelected() {
    // An instance selected from a group's panel highlights its group's node.
    const group = this.selectedGroup || (this.selected && !this.node(this.selected)
      ? ScenarioPage.groupOf(this.selected) : null);
    for (const node of this.nodes()) {
      const chosen = node.dataset.group ? node.dataset.group === group : node.dataset.task === this.selected;
      node.classList.toggle("selected", chosen);
    }
    for (const bar of this.bars()) {
      const chosen = bar.dataset.group ? bar.dataset.group === group : bar.dataset.task === this.selected;
      bar.classList.toggle("selected", chosen);
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
      if (this.root.querySelector("g.node[data-group]")) this.refreshGroupsSoon();
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
    if (!node) {
      // An instance of a group drawn as one node: its counts are re-read (throttled).
      if (this.groupNode(ScenarioPage.groupOf(data.task))) this.refreshGroupsSoon();
      if (data.task === this.selected) this.select(data.task, false);
      return;
    }
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

  // A busy group sends many status events; read the groups' counts at most once per
  // GROUP_REFRESH_MS (a throttle, not a debounce: a steady stream still updates).
  refreshGroupsSoon() {
    if (this.groupTimer) return;
    this.groupTimer = setTimeout(async () => {
      try {
        const response = await fetch(`${this.base}/groups`, { credentials: "same-origin" });
        if (!response.ok) throw new Error(`${response.status} from ${this.base}/groups`);
        const { groups } = await response.json();
        for (const [name, info] of Object.entries(groups)) {
          const node = this.groupNode(name);
          if (node) this.updateGroupNode(node, name, info);
        }
        if (this.selectedGroup && groups[this.selectedGroup]) this.updateGroupPanel(groups[this.selectedGroup]);
      } catch (err) {
        this.liveState.textContent = `Could not refresh the groups: ${err.message}`;
      } finally {
        this.groupTimer = null;
      }
    }, GROUP_REFRESH_MS);
  }

  updateGroupNode(node, name, info) {
    const service = node.dataset.service;
    node.classList.remove(`status-${node.dataset.status}`);
    node.classList.add(`status-${info.status}`);
    node.dataset.status = info.status;
    node.dataset.size = info.size;
    node.querySelector(".group-size").textContent = `×${info.size}`;
    node.querySelector("title").textContent = `${name} ×${info.size} (${service}): ${info.description}`;
    node.setAttribute("aria-label", `${name}, group of ${info.size} on ${service}: ${info.description}`);
    const bar = node.querySelector(".group-bar");
    const counts = node.querySelector(".group-counts");
    const width = Number(node.querySelector("rect:not(.group-stack)").getAttribute("width")) - 24;
    bar.replaceChildren();
    counts.replaceChildren();
    let start = 0;
    for (const status of STATUSES) {
      const count = info.counts[status] || 0;
      if (!count) continue;
      const share = count / info.size;
      const rect = document.createElementNS(SVG_NS, "rect");
      rect.setAttribute("class", `share share-${status}`);
      rect.dataset.status = status;
      rect.setAttribute("x", 12 + start * width);
      rect.setAttribute("y", 25);
      rect.setAttribute("width", share * width);
      rect.setAttribute("height", 6);
      bar.append(rect);
      start += share;
      const text = document.createElementNS(SVG_NS, "tspan");
      text.setAttribute("class", `status-text-${status}`);
      text.textContent = `${ICONS[status]}${count}`;
      counts.append(text, " ");
    }
  }

  // The open group's counts follow at once; its page of instances is re-read unless the
  // reader is working inside the panel (replacing it would take their focus away).
  updateGroupPanel(info) {
    const details = this.panel.querySelector(".group-details");
    if (!details) return;
    for (const cell of details.querySelectorAll("td[data-status]")) {
      const count = info.counts[cell.dataset.status] || 0;
      cell.textContent = count;
      cell.parentElement.classList.toggle("zero", count === 0);
    }
    if (!this.panel.contains(document.activeElement)) this.loadGroupPanel();
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
