// One k6 load run against an OpenAI-compatible chat route (testing/k6_load.py writes the
// environment): an open loop (MODE=open: RATE requests/s whatever the answers' pace, what real
// traffic does) or a closed one (MODE=closed: VUS clients, each sending its next request once the
// last is answered), WARMUP_S seconds not counted, then SECONDS measured.
import http from 'k6/http';
import exec from 'k6/execution';
import { SharedArray } from 'k6/data';
import { Counter, Trend } from 'k6/metrics';

const bodies = new SharedArray('bodies', () => JSON.parse(open(__ENV.BODIES)).map((b) => JSON.stringify(b)));
const answeredMs = new Trend('answered_ms', true);
// Every outcome of a measured request, one counter each: k6's summary keeps no per-tag figures.
const answered = new Counter('answered');
const shed = new Counter('shed_with_retry_after');
const shedBare = new Counter('shed_without_retry_after');
const failed = new Counter('failed');
// Every answer, warm-up included: what the processes' CPU time is divided by.
const answeredAll = new Counter('answered_all');

function phase(name, startTime, seconds) {
  const base = { startTime: `${startTime}s`, duration: `${seconds}s`, gracefulStop: `${__ENV.TIMEOUT_S}s` };
  if (__ENV.MODE === 'closed') {
    return { ...base, executor: 'constant-vus', vus: Number(__ENV.VUS) };
  }
  return {
    ...base,
    executor: 'constant-arrival-rate',
    rate: Number(__ENV.RATE),
    timeUnit: '1s',
    preAllocatedVUs: Number(__ENV.PREALLOCATED_VUS),
    maxVUs: Number(__ENV.MAX_VUS),
  };
}

const warmup = Number(__ENV.WARMUP_S);
const scenarios = { measure: phase('measure', warmup, Number(__ENV.SECONDS)) };
if (warmup > 0) {
  scenarios.warm = phase('warm', 0, warmup);
}

export const options = {
  discardResponseBodies: true,
  summaryTrendStats: ['p(50)', 'p(90)', 'p(99)', 'max', 'count'],
  scenarios,
};

const params = {
  headers: JSON.parse(__ENV.HEADERS),
  timeout: `${__ENV.TIMEOUT_S}s`,
};

export default function () {
  const body = bodies[exec.scenario.iterationInTest % bodies.length];
  const response = http.post(__ENV.URL, body, params);
  if (response.status === 200) {
    answeredAll.add(1);
  }
  if (exec.scenario.name !== 'measure') {
    return;
  }
  if (response.status === 200) {
    answered.add(1);
    answeredMs.add(response.timings.duration);
  } else if (response.status === 503 && response.headers['Retry-After']) {
    shed.add(1);
  } else if (response.status === 503) {
    shedBare.add(1);
  } else {
    failed.add(1);
  }
}

export function handleSummary(data) {
  return { [__ENV.SUMMARY]: JSON.stringify(data.metrics) };
}
