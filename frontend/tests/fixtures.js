// Shared test data: run lists shaped like the `runs` route's answer.

export function runInfo(name, steps, ready = steps, extra = {}) {
  return {run: name, steps, n: 100, n_classes: 3, classes: ['a', 'b', 'c'], colors: ['#ff0000', '#00ff00', '#0000ff'],
    has_head: true, has_inputs: true, flags: [], status: {state: ready.length === steps.length ? 'ready' : 'running', ready, running: null, progress: null}, ...extra};
}

export const TWO_RUNS = [runInfo('clean', [0, 1, 2, 3]), runInfo('noisy', [0, 2, 4], [0, 2])];
