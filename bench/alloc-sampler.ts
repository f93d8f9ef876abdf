/**
 * Allocation sampling for a running proxy, collected objects included (a plain `--heap-prof`
 * keeps only what is still alive, which for a login is almost nothing). Load it with
 * `--import` into the process under test; it samples every ~1 KiB allocated between
 * ALLOC_START_MS and ALLOC_STOP_MS after start and writes `<ALLOC_OUT>.<pid>.heapprofile`
 * (cluster workers inherit it, each writes its own). Summarise with alloc-summary.js.
 * Bytes allocated per login do not swing with the host's load as CPU seconds do.
 *
 *   ALLOC_START_MS=6000 ALLOC_STOP_MS=14000 ALLOC_OUT=/tmp/alloc \
 *     node --import ./dist-bench/bench/alloc-sampler.js bin/portier.js serve -c my.yaml
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

setTimeout(() => {
  void post('HeapProfiler.enable')
    .then(() => post('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true }))
    .then(() => process.stderr.write(`alloc-sampler: sampling (pid ${process.pid})\n`));
}, start).unref();

setTimeout(() => {
  void post('HeapProfiler.stopSampling').then((r) => {
    const file = `${out}.${process.pid}.heapprofile`;
    writeFileSync(file, JSON.stringify((r as { profile: unknown }).profile));
    process.stderr.write(`alloc-sampler: wrote ${file}\n`);
  });
}, stop).unref();
