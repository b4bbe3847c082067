/**
 * The deployment examples (deploy/compose.yaml, deploy/kubernetes/imgrelay.yaml) parse as YAML and say what
 * docs/deploy.md says: replicas sharing one S3 bucket, Varnish's backends named as the compose services, the admin
 * port never published, probes on /readyz and /healthz, a grace period longer than the drain, and only variables the
 * service knows (README's configuration table). Parsed with Debian's python3-yaml (.ci/apt-packages): no YAML parser
 * is a dependency of ours, and a parser is the only honest check that the files are valid YAML. Nothing here can run
 * compose or a cluster; the scale-out itself runs in test/scale-out.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const file = (path: string) => new URL(`../${path}`, import.meta.url).pathname;
type Doc = any;

/** Every document of a YAML file, as JSON (python3-yaml's safe loader: anchors and merge keys resolved). */
function parseYaml(path: string): Doc[] {
  const script = 'import json, sys, yaml\nprint(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))';
  try {
    return JSON.parse(execFileSync('python3', ['-c', script, path], { encoding: 'utf8' })) as Doc[];
  } catch (error) {
    throw new Error(`${path}: not valid YAML, or python3-yaml is missing (apt-get install python3-yaml; .ci/apt-packages)\n${String(error)}`);
  }
}

/** The variable names of README's configuration table (first column, without the IMGRELAY_ prefix). */
function documentedVariables(): Set<string> {
  const readme = readFileSync(file('README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('\n## ', readme.indexOf('## Configuration') + 5));
  const names = new Set<string>();
  for (const row of section.split('\n').filter((line) => line.startsWith('| `'))) {
    for (const match of row.split(' | ')[0].matchAll(/`([A-Z0-9_]+)`/g)) names.add(match[1]);
  }
  return names;
}

const envNames = (env: Record<string, unknown> | Array<{ name: string }>) =>
  (Array.isArray(env) ? env.map((e) => e.name) : Object.keys(env)).filter((name) => name.startsWith('IMGRELAY_'));
const unknownVariables = (names: string[]) => names.filter((name) => !documentedVariables().has(name.slice('IMGRELAY_'.length)));

describe('deploy/compose.yaml', () => {
  const [compose] = parseYaml(file('deploy/compose.yaml'));
  const services = compose.services as Record<string, Doc>;
  const replicas = Object.keys(services).filter((name) => /^imgrelay-\d+$/.test(name));

  it('runs the replicas Varnish\'s cluster.vcl names, on one bucket, purging Varnish, admin unpublished', () => {
    const vcl = readFileSync(file('deploy/varnish/cluster.vcl'), 'utf8');
    const backends = [...vcl.matchAll(/\.host = "([^"]+)";\s*\n\s*\.port = "(\d+)";/g)].map((m) => `${m[1]}:${m[2]}`);
    expect(backends).toEqual(replicas.map((name) => `${name}:8080`));
    expect(replicas.length).toBeGreaterThanOrEqual(3);
    for (const name of replicas) {
      const env = services[name].environment;
      expect(env.IMGRELAY_STORE).toBe('s3');
      expect(env.IMGRELAY_S3_BUCKET).toBe(services[replicas[0]].environment.IMGRELAY_S3_BUCKET);
      expect(env.IMGRELAY_CDN_PURGE).toBe('varnish+http://varnish:6081');
      expect(services[name].ports).toBeUndefined(); // neither the admin nor the public port is published
      expect(services[name].init).toBe(true);
      const graceS = Number(/^(\d+)s$/.exec(services[name].stop_grace_period)?.[1]);
      expect(graceS * 1000).toBeGreaterThanOrEqual(Number(env.IMGRELAY_SHUTDOWN_TIMEOUT_MS) + 5000);
    }
    // Varnish loads cluster.vcl with the file it includes beside it.
    const mounts = (services.varnish.volumes as string[]).map((v) => v.split(':').slice(0, 2).join(':'));
    expect(mounts).toEqual(['./varnish/cluster.vcl:/etc/varnish/default.vcl', './varnish/imgrelay.vcl:/etc/varnish/imgrelay.vcl']);
  });

  it('uses only documented variables', () => {
    const names = replicas.flatMap((name) => envNames(services[name].environment));
    expect(names.length).toBeGreaterThan(10);
    expect(unknownVariables(names)).toEqual([]);
  });
});

describe('deploy/kubernetes/imgrelay.yaml', () => {
  const docs = parseYaml(file('deploy/kubernetes/imgrelay.yaml'));
  const of = (kind: string) => docs.find((d) => d.kind === kind);
  const pod = of('Deployment').spec.template.spec;
  const container = pod.containers[0];
  const env = Object.fromEntries((container.env as Array<{ name: string; value: string }>).map((e) => [e.name, e.value]));

  it('probes readiness on /readyz and liveness on /healthz, and outlasts the drain before a kill', () => {
    expect(of('Deployment').spec.replicas).toBeGreaterThanOrEqual(2);
    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
    expect(container.livenessProbe.httpGet.path).toBe('/healthz');
    const preStopS = Number(container.lifecycle.preStop.exec.command[1]);
    const drainDelayMs = 5000; // IMGRELAY_DRAIN_DELAY_MS's default
    expect(pod.terminationGracePeriodSeconds * 1000)
      .toBeGreaterThan(preStopS * 1000 + drainDelayMs + Number(env.IMGRELAY_SHUTDOWN_TIMEOUT_MS));
    // Readiness notices the drain before the listener closes.
    expect(container.readinessProbe.periodSeconds * container.readinessProbe.failureThreshold * 1000).toBeLessThan(drainDelayMs);
  });

  it('keeps the admin port out of the Service and lets only monitoring and admin pods reach it', () => {
    const admin = container.ports.find((p: Doc) => p.name === 'admin');
    expect(admin.containerPort).toBe(8081);
    for (const port of of('Service').spec.ports) expect([8081, 'admin']).not.toContain(port.targetPort);
    const adminRule = of('NetworkPolicy').spec.ingress.find((rule: Doc) => rule.ports.some((p: Doc) => p.port === 8081));
    expect(adminRule.from.length).toBeGreaterThan(0);
    expect(env.IMGRELAY_STORE).toBe('s3');
  });

  it('uses only documented variables', () => {
    expect(unknownVariables(envNames(container.env))).toEqual([]);
  });
});
