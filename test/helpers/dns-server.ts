/**
 * A real DNS server over UDP on loopback for tests (c-ares talks to it through IMGRELAY_DNS_SERVERS): it answers A
 * and AAAA questions from a table with the TTL given there (unknown names: NXDOMAIN), or, as a black hole, receives
 * and counts every query and never answers (a resolver that is down or filtered, the attack of issue #14 item 4).
 * Only the wire format c-ares needs: one question, answers that point back at it.
 */
import { createSocket, type RemoteInfo } from 'node:dgram';
import { isIPv4, isIPv6 } from 'node:net';
import ipaddr from 'ipaddr.js';

export interface DnsRecords {
  a?: string[];
  aaaa?: string[];
  ttl?: number;
}

export interface TestDnsServer {
  /** `127.0.0.1:<port>`, the IMGRELAY_DNS_SERVERS spelling. */
  address: string;
  /** Queries received (name, type, when: `performance.now()`), answered or not. */
  queries: Array<{ name: string; type: number; at: number }>;
  /** Adds or replaces the records of `name`. */
  set(name: string, records: DnsRecords): void;
  close(): Promise<void>;
}

const TYPE_A = 1;
const TYPE_AAAA = 28;

/** `blackHole`: receive and count, never answer (every name, or the names it returns true for: a dead zone). */
export async function startDnsServer(options: { blackHole?: boolean | ((name: string) => boolean); host?: string } = {})
  : Promise<TestDnsServer> {
  const host = options.host ?? '127.0.0.1';
  const socket = createSocket(isIPv6(host) ? 'udp6' : 'udp4');
  const table = new Map<string, DnsRecords>();
  const queries: TestDnsServer['queries'] = [];
  socket.on('message', (packet: Buffer, peer: RemoteInfo) => {
    const question = readQuestion(packet);
    if (!question) return;
    queries.push({ name: question.name, type: question.type, at: performance.now() });
    const silent = typeof options.blackHole === 'function' ? options.blackHole(question.name.toLowerCase()) : options.blackHole;
    if (silent) return;
    socket.send(answer(packet, question, table.get(question.name.toLowerCase())), peer.port, peer.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, host, resolve));
  const port = socket.address().port;
  return {
    address: isIPv4(host) ? `${host}:${port}` : `[${host}]:${port}`,
    queries,
    set: (name, records) => void table.set(name.toLowerCase(), records),
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

interface Question {
  name: string;
  type: number;
  /** Offset just past the question (QTYPE and QCLASS included). */
  end: number;
}

function readQuestion(packet: Buffer): Question | undefined {
  if (packet.length < 12 || packet.readUInt16BE(4) !== 1) return undefined;
  const labels: string[] = [];
  let offset = 12;
  while (offset < packet.length && packet[offset] !== 0) {
    const length = packet[offset];
    labels.push(packet.subarray(offset + 1, offset + 1 + length).toString('ascii'));
    offset += 1 + length;
  }
  if (offset + 5 > packet.length) return undefined;
  return { name: labels.join('.'), type: packet.readUInt16BE(offset + 1), end: offset + 5 };
}

function answer(query: Buffer, question: Question, records: DnsRecords | undefined): Buffer {
  const rdatas = !records ? [] : question.type === TYPE_A ? (records.a ?? []) : question.type === TYPE_AAAA ? (records.aaaa ?? []) : [];
  const header = Buffer.alloc(12);
  header.writeUInt16BE(query.readUInt16BE(0), 0); // id
  header.writeUInt16BE(records ? 0x8180 : 0x8183, 2); // response, RD+RA; NXDOMAIN for unknown names
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(rdatas.length, 6);
  const answers = rdatas.map((ip) => {
    const bytes = Buffer.from(ipaddr.parse(ip).toByteArray());
    const rr = Buffer.alloc(12);
    rr.writeUInt16BE(0xc00c, 0); // name: pointer to the question
    rr.writeUInt16BE(question.type, 2);
    rr.writeUInt16BE(1, 4); // class IN
    rr.writeUInt32BE(records?.ttl ?? 60, 6);
    rr.writeUInt16BE(bytes.length, 10);
    return Buffer.concat([rr, bytes]);
  });
  return Buffer.concat([header, query.subarray(12, question.end), ...answers]);
}
