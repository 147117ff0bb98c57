import {test} from 'node:test';
import assert from 'node:assert/strict';
import {createApi} from '../api.js';

/** Records the requests the client makes and answers each with a small JSON body. */
function recordingFetch() {
  const calls = [];
  const fetch = async (url, init = {}) => {
    calls.push({url, init});
    return new Response(JSON.stringify({run: 'r', step: 1, runs: [], ids: [0], x: [0], y: [0], labels: [0], pred: [0], conf: [1], split: [1]}), {status: 200, headers: {'Content-Type': 'application/json'}});
  };
  return {calls, fetch};
}

test('the quality metrics are fetched at low priority, the map\'s projections and runs at the default', async () => {
  const {calls, fetch} = recordingFetch();
  const saved = globalThis.fetch;
  globalThis.fetch = fetch;
  try {
    const api = createApi();
    await api.metrics('r', 1);
    await api.projection('r', 1);
    await api.runs();
  } finally {
    globalThis.fetch = saved;
  }
  const by = (route) => calls.find((c) => c.url.startsWith(`./${route}?`));
  assert.equal(by('metrics').init.priority, 'low');
  assert.equal(by('projection').init.priority, undefined);
  assert.equal(by('runs').init.priority, undefined);
  assert.equal(by('metrics').init.credentials, 'same-origin');
});
