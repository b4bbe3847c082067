/** One measured run of a load against one server process → a Sample (rate, server CPU per op, latency). */
import type { Child } from './child.js';
import { closedLoop, type LoopOptions, type LoopResult } from './client.js';
import type { Sample } from './rounds.js';
import { withServerCpu } from './rounds.js';
import { median } from './stats.js';
import { wrk, type WrkOptions, type WrkResult } from './wrk.js';

export async function loopSample(server: Child, urls: readonly string[], options: LoopOptions) {
  const { value: result, cpuMs } = await withServerCpu(server, () => closedLoop(urls, options));
  return { sample: loopToSample(result, cpuMs), result };
}

export function loopToSample(result: LoopResult, cpuMs: number): Sample {
  const ops = result.exchanges.length;
  return {
    rate: (ops * 1000) / result.elapsedMs,
    cpuMsPerOp: cpuMs / ops,
    p50Ms: median(result.exchanges.map((e) => e.latencyMs)),
    ops,
    errors: result.failures.length,
  };
}

export async function wrkSample(server: Child, url: string, options: WrkOptions): Promise<{ sample: Sample; result: WrkResult }> {
  const { value: result, cpuMs } = await withServerCpu(server, () => wrk(url, options));
  const sample = {
    rate: result.rps,
    cpuMsPerOp: cpuMs / result.requests,
    p50Ms: result.latencyP50Ms,
    ops: result.requests,
    errors: result.non2xx + result.socketErrors,
  };
  return { sample, result };
}

/** A child that runs the load itself (raw sharp, the SDK loop): `command` answers { ops, elapsedMs, errors? }. */
export async function childRunSample(child: Child, command: string, payload: unknown): Promise<Sample> {
  const { value, cpuMs } = await withServerCpu(child, () =>
    child.call<{ ops: number; elapsedMs: number; errors?: number }>(command, payload));
  return { rate: (value.ops * 1000) / value.elapsedMs, cpuMsPerOp: cpuMs / value.ops, p50Ms: Number.NaN,
    ops: value.ops, errors: value.errors ?? 0 };
}
