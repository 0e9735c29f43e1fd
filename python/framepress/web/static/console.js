// The console's little script: live progress on the task list and task page, and the player.
"use strict";

const SETTLED = ["succeeded", "escalated", "failed", "cancelled"];

function apply(el, task) {
  const status = el.querySelector('[data-field="status"]');
  if (status && status.textContent !== task.status) {
    status.textContent = task.status;
    status.className = "badge " + task.status;
  }
  const progress = el.querySelector('[data-field="progress"]');
  if (progress) progress.value = task.progress || 0;
  const attempts = el.querySelector('[data-field="attempts"]');
  if (attempts) attempts.textContent = task.attempts + "/" + task.max_attempts;
}

async function poll(url) {
  const resp = await fetch(url, {credentials: "same-origin", headers: {accept: "application/json"}});
  if (!resp.ok) throw new Error("HTTP " + resp.status);
  return resp.json();
}

function liveList(table) {
  const tick = async () => {
    try {
      for (const task of await poll(table.dataset.live)) {
        const row = table.querySelector('tr[data-task="' + task.id + '"]');
        if (row) apply(row, task);
      }
    } catch (e) { /* the next tick tries again */ }
  };
  setInterval(tick, 2000);
}

function liveTask(facts) {
  const first = facts.querySelector('[data-field="status"]').textContent;
  if (SETTLED.includes(first)) return;
  const timer = setInterval(async () => {
    try {
      const task = await poll(facts.dataset.live);
      apply(facts, task);
      if (SETTLED.includes(task.status)) {
        clearInterval(timer);
        window.location.reload();    // the timeline, renditions and player are now complete
      }
    } catch (e) { /* the next tick tries again */ }
  }, 1500);
}

function player(video) {
  const src = video.dataset.src;
  if (window.Hls && window.Hls.isSupported()) {
    const hls = new window.Hls({enableWorker: false});
    hls.on(window.Hls.Events.ERROR, (_event, data) => {
      if (data.fatal) video.dataset.error = data.type + ": " + data.details;
    });
    hls.on(window.Hls.Events.MANIFEST_PARSED, () => { video.play().catch(() => {}); });
    hls.loadSource(src);
    hls.attachMedia(video);
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = src;                  // Safari plays HLS itself
  } else {
    video.dataset.error = "this browser cannot play HLS";
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const table = document.querySelector("table[data-live]");
  if (table) liveList(table);
  const facts = document.querySelector("dl[data-live]");
  if (facts) liveTask(facts);
  const video = document.querySelector("video[data-src]");
  if (video) player(video);
});
