// The tab's link to TensorBoard and to the URL.
//
// TensorBoard talks to plugin iframes over a MessageChannel: the guest posts "experimental.bootstrap" with a port
// and then exchanges JSON {type, id, payload, error, isReply}. The host answers `experimental.GetURLPluginData`
// with the `p.<plugin>.*` keys of its URL hash and broadcasts `experimental.DataReloaded` after each reload.
// The host has no message to *write* hash keys, so the tab writes `p.dvi.*` into the (same-origin) parent URL
// with history.replaceState, and keeps a sessionStorage copy for when the parent is not reachable.

const PREFIX = 'p.dvi.';
const STORAGE_KEY = 'dvi.tab.state';
const PLUGIN = 'dvi';

/** Connects to the TensorBoard host if there is one. Never throws; `available` tells whether it answered. */
export function connectHost({timeoutMs = 1500} = {}) {
  const listeners = new Map();
  const waits = new Map();
  let port = null;
  let nextId = 0;
  const host = {
    available: false,
    on(type, fn) {
      listeners.set(type, fn);
    },
    async request(type, payload) {
      if (!port) throw new Error('no host');
      const id = nextId++;
      port.postMessage(JSON.stringify({type, id, payload, error: null, isReply: false}));
      return new Promise((resolve, reject) => {
        waits.set(id, {resolve, reject});
        setTimeout(() => waits.has(id) && (waits.delete(id), reject(new Error(`${type}: no answer`))), timeoutMs);
      });
    },
  };
  if (window.parent === window) return host;
  try {
    const channel = new MessageChannel();
    port = channel.port1;
    port.onmessage = async (event) => {
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch (_) {
        return;
      }
      if (msg.isReply) {
        const w = waits.get(msg.id);
        if (!w) return;
        waits.delete(msg.id);
        msg.error ? w.reject(new Error(msg.error)) : w.resolve(msg.payload);
        return;
      }
      let payload = null;
      let error = null;
      const fn = listeners.get(msg.type);
      try {
        if (fn) payload = (await fn(msg.payload)) ?? null;
      } catch (e) {
        error = String(e);
      }
      port.postMessage(JSON.stringify({type: msg.type, id: msg.id, payload, error, isReply: true}));
    };
    window.parent.postMessage('experimental.bootstrap', '*', [channel.port2]);
    host.available = true;
  } catch (_) {
    port = null;
  }
  return host;
}

function parseHash(hash) {
  const out = {};
  for (const part of hash.replace(/^#/, '').split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    out[decodeURIComponent(part.slice(0, eq))] = decodeURIComponent(part.slice(eq + 1));
  }
  return out;
}

function parentLocation() {
  try {
    if (window.parent !== window && window.parent.location.href) return window.parent.location;
  } catch (_) {
    /* cross-origin parent */
  }
  return null;
}

function stripPrefix(dict) {
  const out = {};
  for (const [k, v] of Object.entries(dict)) if (k.startsWith(PREFIX)) out[k.slice(PREFIX.length)] = v;
  return out;
}

/**
 * Reads the saved tab state {run, step, sel, compare, ...} (strings). Sources, first that has a `run` wins:
 * the parent's URL hash, the host's GetURLPluginData, this frame's hash, sessionStorage.
 */
export async function readUrlState(host) {
  // The parent's live hash first: the host's copy of it is only refreshed on `hashchange`.
  const pl = parentLocation();
  if (pl) {
    const d = stripPrefix(parseHash(pl.hash));
    if (d.run) return d;
  }
  if (host && host.available) {
    try {
      const data = await host.request('experimental.GetURLPluginData', {pluginName: PLUGIN});
      if (data && data.run) return data;
    } catch (_) {
      /* fall through */
    }
  }
  const own = stripPrefix(parseHash(window.location.hash));
  if (own.run) return own;
  try {
    return JSON.parse(window.sessionStorage.getItem(STORAGE_KEY) || '{}');
  } catch (_) {
    return {};
  }
}

function writeHash(loc, history, state) {
  const raw = loc.hash.replace(/^#/, '');
  const kept = raw.split('&').filter((p) => p && !decodeURIComponent(p.split('=')[0]).startsWith(PREFIX));
  for (const [k, v] of Object.entries(state)) {
    if (v === undefined || v === null || v === '') continue;
    kept.push(`${encodeURIComponent(PREFIX + k)}=${encodeURIComponent(v)}`);
  }
  const url = new URL(loc.href);
  url.hash = kept.join('&');
  if (url.href !== loc.href) history.replaceState(history.state, '', url.href);
}

/** Saves the tab state (an object of strings) in the parent's hash (`p.dvi.*`), this frame's hash and sessionStorage. */
export function writeUrlState(state) {
  try {
    window.sessionStorage.setItem(STORAGE_KEY, JSON.stringify(state));
  } catch (_) {
    /* storage disabled */
  }
  const pl = parentLocation();
  try {
    if (pl) writeHash(pl, window.parent.history, state);
    else writeHash(window.location, window.history, state);
  } catch (_) {
    /* a host that forbids it */
  }
}
