/**
 * Allocation sampling for a running proxy, collected objects included (a plain `--heap-prof`
 * keeps only what is still alive, which for a login is almost nothing). Load it with
 * `--import` into the process under test; it samples every ~1 KiB allocated between
 * ALLOC_START_MS and ALLOC_STOP_MS after start and writes `<ALLOC_OUT>.<pid>.heapprofile`
 * (cluster workers inherit it, each writes its own). Summarise with alloc-summary.js.
 * Bytes allocated per login do not swing with the host's load as CPU seconds do.
 *
 *   ALLOC_START_MS=6000 ALLOC_STOP_MS=40000 ALLOC_OUT=/tmp/alloc \
 *     node --import ./dist-bench/bench/alloc-sampler.js bin/portier.js serve -c my.yaml
 *
 * Run an exact number of operations (`bench ... -n 3000`) between "sampling" and "wrote" on
 * stderr, and give that number to alloc-summary.js (docs/performance.md, "Profiling portier yourself").
 */
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';

const session = new Session();
session.connect();
const post = (method: string, params: object = {}): Promise<unknown> =>
  new Promise((resolve, reject) => session.post(method, params, (err, res) => (err ? reject(err) : resolve(res))));
const start = Number(process.env['ALLOC_START_MS'] ?? 5000);
const stop = Number(process.env['ALLOC_STOP_MS'] ?? 15_000);
const out = process.env['ALLOC_OUT'] ?? '/tmp/portier-alloc';

const fail = (err: unknown): void => {
  process.stderr.write(`alloc-sampler: ${err instanceof Error ? err.message : String(err)}\n`);
};

if (!(Number.isFinite(start) && Number.isFinite(stop) && start >= 0 && stop > start)) {
  fail(`ALLOC_START_MS (${start}) and ALLOC_STOP_MS (${stop}) must be numbers with start < stop; not sampling`);
} else {
  arm();
}

/** Sampling on at `start`, off and written at `stop`; a failure is reported, never thrown into the process under test. */
function arm(): void {
  setTimeout(() => {
    post('HeapProfiler.enable')
      .then(() => post('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true }))
      .then(() => process.stderr.write(`alloc-sampler: sampling (pid ${process.pid})\n`))
      .catch(fail);
  }, start).unref();
  setTimeout(() => {
    post('HeapProfiler.stopSampling')
      .then((r) => {
        const file = `${out}.${process.pid}.heapprofile`;
        writeFileSync(file, JSON.stringify((r as { profile: unknown }).profile));
        process.stderr.write(`alloc-sampler: wrote ${file}\n`);
      })
      .catch(fail);
  }, stop).unref();
}
