/**
 * Counts sharp output operations in this process by wrapping the prototype's output methods. The bench uses it
 * to count transforms in the imgrelay child without touching src/ (coalescing: N requests should encode once).
 */
import sharp from 'sharp';

const OUTPUT_METHODS = ['toBuffer', 'toFile'] as const;

export function countSharpOutputs(): () => number {
  let count = 0;
  const proto = sharp.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
  for (const method of OUTPUT_METHODS) {
    const original = proto[method];
    proto[method] = function wrapped(this: unknown, ...args: unknown[]) {
      count++;
      return original.apply(this, args);
    };
  }
  return () => count;
}
