/**
 * The child side of bench/lib/child.ts: announce `ready`, answer commands from the parent, stop on request.
 * Exiting through process.exit (not a signal) lets `node --cpu-prof` write its profile.
 */
export type Commands = Record<string, (payload: unknown) => unknown>;

type Request = { id: number; command: string; payload?: unknown };

export function serveParent(info: Record<string, unknown>, commands: Commands, stop: () => Promise<void>): void {
  if (!process.send) throw new Error('bench servers run as IPC children of bench/run.ts');
  process.on('message', (message: Request) => void answer(message, commands, stop));
  process.on('SIGTERM', () => void stop().finally(() => process.exit(0)));
  process.send({ type: 'ready', info });
}

async function answer(message: Request, commands: Commands, stop: () => Promise<void>): Promise<void> {
  const reply = (body: Record<string, unknown>, then?: () => void) =>
    process.send?.({ id: message.id, ...body }, undefined, {}, () => then?.());
  if (message.command === 'stop') {
    await stop().catch(() => undefined);
    reply({ ok: true }, () => process.exit(0));
    return;
  }
  const handler = commands[message.command];
  try {
    if (!handler) throw new Error(`unknown command ${message.command}`);
    reply({ ok: true, result: await handler(message.payload) });
  } catch (error) {
    reply({ ok: false, error: error instanceof Error ? error.message : String(error) });
  }
}

/** Reports a start-up failure to the parent (with the reason) instead of dying silently. */
export function failStartup(error: unknown): void {
  const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
  process.stderr.write(`${text}\n`);
  if (process.send) process.send({ type: 'failed', error: text }, undefined, {}, () => process.exit(1));
  else process.exit(1);
}

/** Per-process counters a parent can read (e.g. how many sharp encodes ran). */
export function resourceSnapshot(): Record<string, number> {
  const usage = process.resourceUsage();
  const memory = process.memoryUsage();
  return { userCpuMs: usage.userCPUTime / 1000, systemCpuMs: usage.systemCPUTime / 1000, maxRssKb: usage.maxRSS,
    heapUsedBytes: memory.heapUsed, arrayBuffersBytes: memory.arrayBuffers };
}
