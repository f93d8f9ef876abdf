/**
 * Turns the compare run's results into numbers per scenario (median over rounds), ratios,
 * goals met, a Markdown table and an SVG chart of small multiples (one panel per scenario,
 * its own scale, the goal drawn as a dashed line).
 */
import type { BenchResult } from '../lib/result.js';
import { HIGHER_BETTER, type Metric, type Scenario, type ScenarioValues, type Target, TARGETS } from './plan.js';

export interface RunRecord {
  round: number;
  scenario: string;
  target: Target;
  /** bench/lib/host-probe.ts, taken just before this run (absent in older results): SHA-256 ms, memory walk ns per step. */
  hostProbeMs?: number;
  hostProbeMemNs?: number;
  result?: BenchResult;
  error?: string;
}

export interface ScenarioSummary {
  id: string;
  title: string;
  metric: Metric;
  unit: string;
  higherBetter: boolean;
  values: ScenarioValues;
  /** Every round's value, by target, for the spread. */
  rounds: Partial<Record<Target, number[]>>;
  /** nginx's auth_http server, CPU µs per op, reported beside its workers. */
  nginxAuthUs?: number;
  /** CPU scenarios: the kernel's part (system time) of each target's µs per op, median of the rounds. */
  kernelUs?: ScenarioValues;
  /** NOOP p99 added (latency scenarios). */
  p99Added?: ScenarioValues;
  sessionsPerGiB?: ScenarioValues;
  /** Memory scenarios: targets whose figure is growth over the whole run (the marginal one was GC noise). */
  upperBound?: Target[];
  /** Memory scenarios: targets with a round whose sessions cost less than the heap's noise (no figure). */
  belowNoise?: Target[];
  /**
   * Memory scenarios: targets whose figure is not to be trusted, and why: `implausible` (below
   * what two sockets' user-space records alone take) or `noisy` (the ramp's samples, or the
   * rounds, disagree by more than the figure). Not judged against the goal.
   */
  doubtful?: Partial<Record<Target, 'implausible' | 'noisy'>>;
  errors: Partial<Record<Target, number>>;
  goal?: string;
  met?: boolean;
  note?: string;
}

export const UNIT: Record<Metric, string> = { rate: 'per s', mbPerS: 'MB/s', cpuUsPerOp: 'µs CPU/op', p50AddedUs: 'µs', rssKiBPerSession: 'KiB' };

/**
 * The least an idle proxied session (two sockets) can keep in user space, kernel buffers aside:
 * for a Node proxy the two net.Socket objects alone (1.8 KiB of heap, measured on Node 20 with
 * forced collections); for nginx or Dovecot a connection record with its read and write events
 * per socket (nginx: ngx_connection_t and two ngx_event_t, about 0.4 KiB). A figure below is a
 * measurement error (memory returned during the ramp), not a cost.
 */
export const MIN_KIB_PER_SESSION: Record<Target, number> = { direct: 0, portier: 1.8, floor: 1.8, nginx: 0.8, dovecot: 0.8 };

function median(xs: number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid] : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

function rawValue(m: Metric, r: BenchResult): number | undefined {
  switch (m) {
    case 'rate':
      return r.rate;
    case 'mbPerS':
      return r.mbPerS;
    case 'cpuUsPerOp':
      return r.accounting !== undefined ? r.accounting.cpuSecondsPer1000Ops * 1000 : undefined;
    case 'p50AddedUs':
      return r.latencyUs.p50;
    case 'rssKiBPerSession':
      return r.accounting?.rssPerSessionKiB;
  }
}

export function summarize(s: Scenario, runs: readonly RunRecord[], note?: string): ScenarioSummary {
  const mine = runs.filter((r) => r.scenario === s.id && r.result !== undefined && r.result.ops > 0);
  const rounds: Partial<Record<Target, number[]>> = {};
  const p99: Partial<Record<Target, number[]>> = {};
  const perGiB: Partial<Record<Target, number[]>> = {};
  const auth: number[] = [];
  const kernel: Partial<Record<Target, number[]>> = {};
  const upperBound: Target[] = [];
  const belowNoise: Target[] = [];
  const errors: Partial<Record<Target, number>> = {};
  const spreads: Partial<Record<Target, number[]>> = {};
  for (const r of runs.filter((x) => x.scenario === s.id)) errors[r.target] = (errors[r.target] ?? 0) + (r.result?.errorCount ?? 0) + (r.error !== undefined ? 1 : 0);
  for (const rec of mine) {
    const res = rec.result;
    if (res === undefined) continue;
    let v = rawValue(s.metric, res);
    if (s.metric === 'p50AddedUs') {
      const direct = mine.find((x) => x.round === rec.round && x.target === 'direct')?.result;
      if (direct === undefined) continue;
      v = res.latencyUs.p50 - direct.latencyUs.p50;
      (p99[rec.target] ??= []).push(res.latencyUs.p99 - direct.latencyUs.p99);
    }
    // A memory figure at or below 0 (from a run before bench idle said so itself) is noise, not a cost.
    if (s.metric === 'rssKiBPerSession' && v !== undefined && v <= 0) {
      if (!belowNoise.includes(rec.target)) belowNoise.push(rec.target);
      continue;
    }
    if (v === undefined) continue;
    (rounds[rec.target] ??= []).push(v);
    if (s.metric === 'rssKiBPerSession' && res.accounting?.rssFit !== undefined) (spreads[rec.target] ??= []).push(res.accounting.rssFit.spreadKiB);
    if (res.idle?.sessionsPerGiB !== undefined) (perGiB[rec.target] ??= []).push(res.idle.sessionsPerGiB);
    if (res.accounting?.rssPerSessionMethod === 'total' && !upperBound.includes(rec.target)) upperBound.push(rec.target);
    if (res.accounting?.rssPerSessionMethod === 'noise' && !belowNoise.includes(rec.target)) belowNoise.push(rec.target);
    if (rec.target === 'nginx' && res.auxAccounting !== undefined) auth.push(res.auxAccounting.cpuSecondsPer1000Ops * 1000);
    // Results written before system time was recorded have no systemSeconds.
    const sys: number | undefined = res.accounting?.systemSeconds;
    if (s.metric === 'cpuUsPerOp' && sys !== undefined) (kernel[rec.target] ??= []).push((sys / res.ops) * 1e6);
  }
  const pick = (m: Partial<Record<Target, number[]>>): ScenarioValues => {
    const out: ScenarioValues = {};
    for (const t of TARGETS) {
      const x = median(m[t] ?? []);
      if (x !== undefined) out[t] = Math.round(x * 10) / 10;
    }
    return out;
  };
  const values = pick(rounds);
  // A target with a round below the noise has no trustworthy figure at this size: none is shown.
  for (const t of belowNoise) delete values[t];
  // Sessions per GiB only where the median memory figure is a measurement (above zero).
  for (const t of TARGETS) if ((values[t] ?? 0) <= 0) delete perGiB[t];
  const doubtful: Partial<Record<Target, 'implausible' | 'noisy'>> = {};
  if (s.metric === 'rssKiBPerSession') {
    for (const t of TARGETS) {
      const v = values[t];
      const all = rounds[t] ?? [];
      if (v === undefined || all.length === 0) continue;
      const acrossRounds = Math.max(...all) - Math.min(...all);
      const withinRound = median(spreads[t] ?? []) ?? 0;
      if (v < MIN_KIB_PER_SESSION[t]) doubtful[t] = 'implausible';
      else if (acrossRounds > v || withinRound > v) doubtful[t] = 'noisy';
    }
  }
  const a = median(auth);
  const met = doubtful.portier !== undefined ? undefined : s.goal?.check(values);
  return {
    id: s.id,
    title: s.title,
    metric: s.metric,
    unit: UNIT[s.metric],
    higherBetter: HIGHER_BETTER[s.metric],
    values,
    rounds,
    ...(a !== undefined ? { nginxAuthUs: Math.round(a * 10) / 10 } : {}),
    ...(s.metric === 'p50AddedUs' ? { p99Added: pick(p99) } : {}),
    ...(Object.keys(kernel).length > 0 ? { kernelUs: pick(kernel) } : {}),
    ...(Object.keys(perGiB).length > 0 ? { sessionsPerGiB: pick(perGiB) } : {}),
    ...(upperBound.length > 0 ? { upperBound } : {}),
    ...(belowNoise.length > 0 ? { belowNoise } : {}),
    ...(Object.keys(doubtful).length > 0 ? { doubtful } : {}),
    errors,
    ...(s.goal !== undefined ? { goal: s.goal.text } : {}),
    ...(met !== undefined ? { met } : {}),
    ...(note !== undefined ? { note } : {}),
  };
}

const fmt = (n: number | undefined): string => (n === undefined ? '–' : Math.abs(n) >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(1));
const ratioText = (a: number | undefined, b: number | undefined): string => (a === undefined || b === undefined || b === 0 ? '–' : `${(a / b).toFixed(2)}×`);

/** Whether the Node floor ran in any scenario (`--with-floor`): only then its column, ratio and series appear. */
export function hasFloor(sums: readonly ScenarioSummary[]): boolean {
  return sums.some((s) => s.values.floor !== undefined || s.errors.floor !== undefined);
}

export function markdown(sums: readonly ScenarioSummary[], header: string): string {
  const floor = hasFloor(sums);
  const lines = floor
    ? [header, '', '| scenario | unit | direct | portier | Dovecot proxy | nginx | Node floor | portier / direct | portier / Dovecot | portier / nginx | portier / floor | goal | met |', '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |']
    : [header, '', '| scenario | unit | direct | portier | Dovecot proxy | nginx | portier / direct | portier / Dovecot | portier / nginx | goal | met |', '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |'];
  for (const s of sums) {
    const v = s.values;
    const direct = s.metric === 'p50AddedUs' ? undefined : v.direct;
    const nginx = s.nginxAuthUs !== undefined && s.nginxAuthUs > 0.05 && v.nginx !== undefined ? `${fmt(v.nginx)} (+${fmt(s.nginxAuthUs)} auth_http)` : fmt(v.nginx);
    const met = `${s.goal ?? ''} | ${s.doubtful?.portier !== undefined ? `unsure (${s.doubtful.portier})` : s.met === undefined ? '–' : s.met ? 'yes' : '**no**'} |`;
    if (floor) lines.push(`| ${s.title} | ${s.unit} | ${s.metric === 'p50AddedUs' ? '0' : fmt(v.direct)} | **${fmt(v.portier)}** | ${fmt(v.dovecot)} | ${nginx} | ${fmt(v.floor)} | ${ratioText(v.portier, direct)} | ${ratioText(v.portier, v.dovecot)} | ${ratioText(v.portier, v.nginx)} | ${ratioText(v.portier, v.floor)} | ${met}`);
    else lines.push(`| ${s.title} | ${s.unit} | ${s.metric === 'p50AddedUs' ? '0' : fmt(v.direct)} | **${fmt(v.portier)}** | ${fmt(v.dovecot)} | ${nginx} | ${ratioText(v.portier, direct)} | ${ratioText(v.portier, v.dovecot)} | ${ratioText(v.portier, v.nginx)} | ${met}`);
  }
  const extras: string[] = [];
  for (const s of sums) {
    if (s.p99Added !== undefined) extras.push(`- ${s.title}: p99 added ${TARGETS.filter((t) => t !== 'direct' && (t !== 'floor' || s.p99Added?.floor !== undefined)).map((t) => `${t} ${fmt(s.p99Added?.[t])} µs`).join(', ')}`);
    if (s.kernelUs !== undefined) extras.push(`- ${s.title}: of which in the kernel (system time: system calls, and on loopback the TCP stack's work for both ends) ${TARGETS.filter((t) => s.kernelUs?.[t] !== undefined).map((t) => `${t} ${fmt(s.kernelUs?.[t])}`).join(', ')} µs`);
    if (s.sessionsPerGiB !== undefined) extras.push(`- ${s.title}: sessions per GiB ${TARGETS.map((t) => (s.sessionsPerGiB?.[t] !== undefined ? `${t} ${fmt(s.sessionsPerGiB[t])}` : '')).filter(Boolean).join(', ')}`);
    if (s.belowNoise !== undefined) extras.push(`- ${s.title}: ${s.belowNoise.join(', ')} below garbage-collection noise in at least one round (the process shrank while the sessions logged in), so no figure at this size`);
    for (const [t, why] of Object.entries(s.doubtful ?? {})) {
      const r = s.rounds[t as Target] ?? [];
      extras.push(why === 'implausible'
        ? `- ${s.title}: ${t} ${fmt(s.values[t as Target])} KiB is below what two sockets alone keep in user space (${MIN_KIB_PER_SESSION[t as Target]} KiB): a measurement error, not a cost`
        : `- ${s.title}: ${t} ${fmt(s.values[t as Target])} KiB is noise: its samples disagree by more than the figure (rounds ${r.map((x) => fmt(x)).join(', ')})`);
    }
    if (s.upperBound !== undefined) extras.push(`- ${s.title}: ${s.upperBound.join(', ')} in at least one round as growth over the whole run per session (an upper bound: the marginal figure was below garbage-collection noise)`);
    const errs = Object.entries(s.errors).filter(([, n]) => (n ?? 0) > 0);
    if (errs.length > 0) extras.push(`- ${s.title}: errors ${errs.map(([t, n]) => `${t} ${n}`).join(', ')}`);
    if (s.note !== undefined) extras.push(`- ${s.title}: ${s.note}`);
  }
  if (extras.length > 0) lines.push('', ...extras);
  lines.push('');
  return `${lines.join('\n')}\n`;
}

const COLORS: Record<Target, string> = { direct: '#9aa5b1', portier: '#1f6feb', dovecot: '#d9822b', nginx: '#2da44e', floor: '#8250df' };
const NAMES: Record<Target, string> = { direct: 'direct', portier: 'portier', dovecot: 'Dovecot proxy', nginx: 'nginx', floor: 'Node floor' };

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Where the goal line goes on the panel's scale, if the goal is a fixed number or a ratio to direct. */
function goalLine(s: ScenarioSummary): number | undefined {
  const g = s.goal ?? '';
  const ratio = /≥ ([\d.]+)× (direct|bare)/.exec(g);
  if (ratio?.[1] !== undefined && s.values.direct !== undefined) return Number(ratio[1]) * s.values.direct;
  const fixed = /≤ \+?([\d.]+)/.exec(g);
  if (fixed?.[1] !== undefined) return Number(fixed[1]);
  return undefined;
}

export function svg(sums: readonly ScenarioSummary[], subtitle: string): string {
  const cols = 3;
  const pw = 330;
  const floor = hasFloor(sums);
  // A fifth bar needs room above the goal line's text.
  const ph = floor ? 181 : 160;
  const top = 92;
  const rows = Math.ceil(sums.length / cols);
  const width = cols * pw + 20;
  const height = top + rows * ph + 20;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="14" y="28" font-size="19" font-weight="bold" fill="#1b1f24">portier against Dovecot's proxy and nginx mail</text>`,
  ];
  // The subtitle wraps at a clause boundary so it fits the width.
  const cut = subtitle.length > 130 ? Math.max(subtitle.lastIndexOf('; ', 130), 60) : subtitle.length;
  out.push(`<text x="14" y="46" font-size="11.5" fill="#57606a">${esc(subtitle.slice(0, cut + 1))}</text>`);
  if (cut < subtitle.length) out.push(`<text x="14" y="61" font-size="11.5" fill="#57606a">${esc(subtitle.slice(cut + 1).trim())}</text>`);
  let lx = 14;
  for (const t of TARGETS.filter((x) => floor || x !== 'floor')) {
    out.push(`<rect x="${lx}" y="70" width="12" height="12" rx="2" fill="${COLORS[t]}"/><text x="${lx + 16}" y="80.5" font-size="11.5" fill="#1b1f24">${NAMES[t]}</text>`);
    lx += 30 + NAMES[t].length * 7;
  }
  out.push(`<text x="${lx + 10}" y="80.5" font-size="11.5" fill="#57606a">red dashes: portier's goal    ✓ / ✗ goal met</text>`);
  sums.forEach((s, i) => {
    const x0 = 10 + (i % cols) * pw;
    const y0 = top + Math.floor(i / cols) * ph;
    const targets = TARGETS.filter((t) => s.values[t] !== undefined && !(s.metric === 'p50AddedUs' && t === 'direct'));
    const goal = goalLine(s);
    const max = Math.max(1e-9, ...targets.map((t) => s.values[t] ?? 0), goal ?? 0) * 1.12;
    const barX = x0 + 92;
    const barW = pw - 150;
    const mark = s.met === undefined ? '' : s.met ? ' <tspan fill="#1a7f37">✓</tspan>' : ' <tspan fill="#cf222e">✗</tspan>';
    out.push(`<rect x="${x0}" y="${y0}" width="${pw - 10}" height="${ph - 10}" rx="6" fill="#f6f8fa" stroke="#d0d7de"/>`);
    out.push(`<text x="${x0 + 8}" y="${y0 + 17}" font-size="11" font-weight="bold" fill="#1b1f24">${esc(s.title.length > 50 ? `${s.title.slice(0, 48)}…` : s.title)}${mark}</text>`);
    out.push(`<text x="${x0 + 8}" y="${y0 + 31}" font-size="10" fill="#57606a">${esc(s.unit)}, ${s.higherBetter ? 'higher' : 'lower'} is better</text>`);
    if (s.goal !== undefined) out.push(`<text x="${x0 + 8}" y="${y0 + ph - 17}" font-size="10" fill="#57606a">goal: ${esc(s.goal.length > 55 ? `${s.goal.slice(0, 53)}…` : s.goal)}</text>`);
    const bh = 16;
    targets.forEach((t, k) => {
      const v = s.values[t] ?? 0;
      const y = y0 + 42 + k * (bh + 5);
      const w = Math.max(1, (Math.max(0, v) / max) * barW);
      out.push(`<text x="${barX - 6}" y="${y + 12}" font-size="10.5" text-anchor="end" fill="#1b1f24"${t === 'portier' ? ' font-weight="bold"' : ''}>${NAMES[t]}</text>`);
      out.push(`<rect x="${barX}" y="${y}" width="${w.toFixed(1)}" height="${bh}" rx="2" fill="${COLORS[t]}"/>`);
      out.push(`<text x="${barX + w + 4}" y="${y + 12}" font-size="10.5" fill="#1b1f24">${fmt(v)}</text>`);
    });
    if (targets.length === 0) out.push(`<text x="${x0 + 8}" y="${y0 + 70}" font-size="11" fill="#cf222e">no result${s.note !== undefined ? `: ${esc(s.note.slice(0, 45))}` : ''}</text>`);
    if (goal !== undefined && targets.length > 0) {
      const gx = barX + (goal / max) * barW;
      out.push(`<line x1="${gx.toFixed(1)}" y1="${y0 + 38}" x2="${gx.toFixed(1)}" y2="${y0 + 42 + targets.length * (bh + 5)}" stroke="#cf222e" stroke-width="1.5" stroke-dasharray="4 3"/>`);
    }
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
