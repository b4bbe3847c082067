/**
 * Host globs (`*`, `*.example.com`, `zkres*.myzaker.com`) shared by the source policy and the header rules.
 * Portable: no `node:` imports.
 */

/** Lower-cases and drops trailing dots, so `Example.COM.` and `example.com` are judged as one name. */
export function normalizeHostname(hostname: string): string {
  return hostname.toLowerCase().replace(/\.+$/, '');
}

/**
 * Compiles a glob to a predicate. `*` matches any run of characters, dots included, so `*.example.com`
 * also covers `a.b.example.com` (what an operator blocking a domain means) but not `example.com` itself.
 */
export function compileHostGlob(glob: string): (hostname: string) => boolean {
  const pattern = normalizeHostname(glob.trim())
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  const regex = new RegExp(`^${pattern}$`);
  return (hostname) => regex.test(normalizeHostname(hostname));
}

/** True when `hostname` matches any of `globs`. */
export function compileHostGlobs(globs: readonly string[]): (hostname: string) => boolean {
  const matchers = globs.map(compileHostGlob);
  return (hostname) => matchers.some((matches) => matches(hostname));
}
