/** Warming a cache entry and checking what the server says about it, before a hit load is measured. */
import { Agent, request } from 'undici';

export interface Primed {
  status: number;
  xCache: string;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export async function get(url: string, headers: Record<string, string> = {}): Promise<Primed> {
  const agent = new Agent({ connections: 1 });
  try {
    const response = await request(url, { dispatcher: agent, headers });
    const body = Buffer.from(await response.body.arrayBuffer());
    return { status: response.statusCode, xCache: String(response.headers['x-cache'] ?? ''), headers: response.headers, body };
  } finally {
    await agent.close();
  }
}

/** GETs `url` until the answer carries `xCache` (write-behind stores need a moment), or throws. */
export async function getUntil(url: string, xCache: string, timeoutMs = 10_000): Promise<Primed> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await get(url);
    if (answer.status === 200 && answer.xCache === xCache) return answer;
    if (Date.now() > deadline) {
      throw new Error(`${url} still answers ${answer.status} X-Cache: ${answer.xCache || '(none)'} (wanted ${xCache})`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
