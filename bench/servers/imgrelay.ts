/** The imgrelay service as a bench child: configured from IMGRELAY_* exactly like `npm start`. */
import { parseConfig } from '../../src/config.js';
import { startNode } from '../../src/node.js';
import { failStartup, resourceSnapshot, serveParent } from './ipc.js';
import { countSharpOutputs } from './sharp-counter.js';

async function main(): Promise<void> {
  const sharpOutputs = countSharpOutputs();
  const config = parseConfig(process.env);
  const running = await startNode(config);
  serveParent({ port: running.port, memoryTierMiB: config.memoryCacheBytes / 1048576 }, {
    stats: () => ({ sharpOutputs: sharpOutputs(), memoryTierBytes: running.memory.stats().bytes, ...resourceSnapshot() }),
    // A full collection on demand (children started with --expose-gc): tells garbage from memory still referenced.
    gc: () => {
      (globalThis as { gc?: () => void }).gc?.();
      return resourceSnapshot();
    },
  }, () => running.close());
}

main().catch(failStartup);
