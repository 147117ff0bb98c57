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

/** Runs `body` with a fetch that answers every request 404 "not rendered yet"; the URLs it was asked for. */
async function withNotRendered(body) {
  const calls = [];
  const saved = globalThis.fetch;
  globalThis.fetch = async (url) => {
    calls.push(url);
    return new Response(JSON.stringify({error: 'not rendered yet'}), {status: 404, headers: {'Content-Type': 'application/json'}});
  };
  try {
    await body(createApi());
  } finally {
    globalThis.fetch = saved;
  }
  return calls;
}

test('a cached-only tile that is not rendered does not stand in for the tile: a plain request renders it', async () => {
  const calls = await withNotRendered(async (api) => {
    const probe = api.tile('r', 3, 2, 1, 0, 256, {cachedOnly: true});
    const plain = api.tile('r', 3, 2, 1, 0, 256); // asked while the probe is on its way
    assert.equal(await probe, null);
    assert.equal(await plain, null);
  });
  assert.equal(calls.length, 2);
  assert.ok(calls[0].includes('cached=1') && calls[0].includes('z=2&tx=1&ty=0'), calls[0]);
  assert.ok(!calls[1].includes('cached='), 'the second request renders the tile');
});

test('the viewport image is asked for by its data box and pixel size', () => {
  const api = createApi();
  const url = api.viewportUrl('r', 3, [-1.5, 2, 3.25, 4], 640, 320);
  assert.equal(url, `./landscape?run=r&step=3&box=${encodeURIComponent('-1.5,2,3.25,4')}&width=640&height=320`);
});

test('probing a tile answers from the status: not rendered is false at once, and a plain request then renders it', async () => {
  const calls = await withNotRendered(async (api) => {
    assert.equal(await api.probeTile('r', 3, 4, 7, 9), false);
    assert.equal(await api.tile('r', 3, 4, 7, 9), null);
  });
  assert.deepEqual(calls.map((u) => u.includes('cached=1')), [true, false]);
});
