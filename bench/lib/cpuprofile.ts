/** Summarises a V8 .cpuprofile (node --cpu-prof): self time per function, hottest first. */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface HotFunction {
  name: string;
  /** File (shortened to the project or package) and 1-based line. */
  location: string;
  selfMs: number;
  /** Share of the non-idle sampled time. */
  share: number;
}

export interface ProfileSummary {
  functions: HotFunction[];
  /** Self time per file or package (node internals, hono, src/…), hottest first. */
  modules: { module: string; selfMs: number; share: number }[];
  busyMs: number;
}

/**
 * Self time per function over the last `windowMs` of the profile (the measured load; start-up and module loading
 * come before it), `(idle)` excluded.
 */
export function hotFunctions(file: string, top = 15, windowMs = Number.POSITIVE_INFINITY): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const from = profile.endTime - windowMs * 1000;
  const selfUs = new Map<string, { frame: ProfileNode['callFrame']; us: number }>();
  let at = profile.startTime;
  profile.samples.forEach((id, index) => {
    at += profile.timeDeltas[index] ?? 0;
    const frame = byId.get(id)?.callFrame;
    if (at < from || !frame || frame.functionName === '(idle)') return;
    const key = `${frame.functionName}|${frame.url}|${frame.lineNumber}`;
    const entry = selfUs.get(key) ?? { frame, us: 0 };
    entry.us += profile.timeDeltas[index] ?? 0;
    selfUs.set(key, entry);
  });
  const entries = [...selfUs.values()].sort((a, b) => b.us - a.us);
  const busyUs = entries.reduce((total, e) => total + e.us, 0);
  const share = (us: number) => (busyUs > 0 ? us / busyUs : 0);
  const functions = entries.slice(0, top).map(({ frame, us }) => ({
    name: frame.functionName || '(anonymous)',
    // Project files run compiled (dist/bench): the line is the JavaScript's, near the TypeScript's. Line 0: file alone.
    location: frame.url ? `${shorten(frame.url)}${frame.lineNumber > 0 ? `:${frame.lineNumber + 1}` : ''}` : '(native)',
    selfMs: us / 1000,
    share: share(us),
  }));
  const perModule = new Map<string, number>();
  for (const { frame, us } of entries) perModule.set(moduleOf(frame.url), (perModule.get(moduleOf(frame.url)) ?? 0) + us);
  const modules = [...perModule].sort((a, b) => b[1] - a[1]).slice(0, top)
    .map(([module, us]) => ({ module, selfMs: us / 1000, share: share(us) }));
  return { functions, modules, busyMs: busyUs / 1000 };
}

/** The file for project code, the package for node_modules, `node:internal` and `(native)` for the rest. */
function moduleOf(url: string): string {
  if (!url) return '(native: syscalls, GC, C++)';
  if (url.startsWith('node:')) return 'node: internals';
  const short = shorten(url);
  if (!url.includes('/node_modules/')) return short;
  const parts = short.split('/');
  return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
}

/**
 * `file:///work/main/node_modules/hono/dist/x.js` → `hono/dist/x.js`; project files relative to the repo, their
 * compiled copies (`dist/bench/src/x.js`) named as the source tree names them (`src/x.js`).
 */
export function shorten(url: string): string {
  const path = url.replace(/^file:\/\//, '').replace(/\/dist\/(bench|node)\//, '/');
  const modules = path.lastIndexOf('/node_modules/');
  if (modules >= 0) return path.slice(modules + '/node_modules/'.length);
  const src = path.search(/\/(src|bench|test)\//);
  return src >= 0 ? path.slice(src + 1) : path;
}
