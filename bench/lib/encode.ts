/**
 * The one description of "the transform being measured", shared by the URL builders (imgrelay, ipx) and the raw
 * sharp limit, so all three contenders do the same decode → resize → encode.
 */
export type Format = 'jpeg' | 'webp' | 'avif';

export interface EncodeSpec {
  format: Format;
  width: number;
  /** JPEG-equivalent quality, as imgrelay's `q` (omitted = the service's default). */
  quality?: number;
}

export function imgrelayPath(sourceUrl: string, spec: EncodeSpec): string {
  const params = new URLSearchParams({ url: sourceUrl, w: String(spec.width), output: spec.format === 'jpeg' ? 'jpg' : spec.format });
  if (spec.quality !== undefined) params.set('q', String(spec.quality));
  return `/?${params}`;
}

export function ipxPath(sourceUrl: string, spec: EncodeSpec): string {
  const modifiers = [`w_${spec.width}`, `f_${spec.format}`];
  if (spec.quality !== undefined) modifiers.push(`q_${spec.quality}`);
  return `/${modifiers.join('&')}/${sourceUrl}`;
}

export const specLabel = (spec: EncodeSpec) =>
  `${spec.width}w ${spec.format.toUpperCase()}${spec.quality !== undefined ? ` q${spec.quality}` : ''}`;

/** The I/O floor's request (bench/servers/io-floor.ts): the origin URL as is, the spec spelled out. */
export function floorPath(sourceUrl: string, spec: EncodeSpec): string {
  const params = new URLSearchParams({ src: sourceUrl, w: String(spec.width), f: spec.format, q: String(spec.quality ?? 80) });
  return `/?${params}`;
}
