/** Summarises a V8 .cpuprofile (node --cpu-prof): self time per function, hottest first. */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
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

export function hotFunctions(file: string, top = 15): { functions: HotFunction[]; busyMs: number } {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<string, { frame: ProfileNode['callFrame']; us: number }>();
  profile.samples.forEach((id, index) => {
    const frame = byId.get(id)?.callFrame;
    if (!frame || frame.functionName === '(idle)') return;
    const key = `${frame.functionName}|${frame.url}|${frame.lineNumber}`;
    const entry = selfUs.get(key) ?? { frame, us: 0 };
    entry.us += profile.timeDeltas[index] ?? 0;
    selfUs.set(key, entry);
  });
  const busyUs = [...selfUs.values()].reduce((total, e) => total + e.us, 0);
  const functions = [...selfUs.values()].sort((a, b) => b.us - a.us).slice(0, top).map(({ frame, us }) => ({
    name: frame.functionName || '(anonymous)',
    location: frame.url ? `${shorten(frame.url)}:${frame.lineNumber + 1}` : '',
    selfMs: us / 1000,
    share: busyUs > 0 ? us / busyUs : 0,
  }));
  return { functions, busyMs: busyUs / 1000 };
}

/** `file:///work/main/node_modules/hono/dist/x.js` → `hono/dist/x.js`; project files relative to the repo. */
export function shorten(url: string): string {
  const path = url.replace(/^file:\/\//, '');
  const modules = path.lastIndexOf('/node_modules/');
  if (modules >= 0) return path.slice(modules + '/node_modules/'.length);
  const src = path.search(/\/(src|bench|test)\//);
  return src >= 0 ? path.slice(src + 1) : path;
}
