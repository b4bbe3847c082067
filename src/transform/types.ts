/** The contract between the core and an image transformer (sharp on Node, passthrough/forwarding at the edge). */

export type ImageFormat =
  | 'jpeg' | 'png' | 'gif' | 'webp' | 'avif' | 'heif' | 'jxl' | 'bmp' | 'tiff' | 'ico' | 'svg';

export type OutputFormat = 'jpeg' | 'png' | 'webp' | 'avif' | 'gif';

export type Fit = 'inside' | 'outside' | 'cover' | 'fill' | 'contain';

export type Gravity =
  | 'center' | 'top' | 'right' | 'bottom' | 'left'
  | 'top-left' | 'top-right' | 'bottom-left' | 'bottom-right'
  | 'attention' | 'entropy';

/**
 * A canonical transform request: only what changes the output bytes. Every field is optional; an
 * absent field means "the default" and never appears in the canonical key.
 */
export interface TransformSpec {
  width?: number;
  height?: number;
  dpr?: number;
  fit?: Fit;
  /** Do not enlarge (weserv `we`). */
  withoutEnlargement?: boolean;
  gravity?: Gravity;
  quality?: number;
  /** Requested output: a fixed format, or 'auto' (negotiated from Accept). Absent = the source's family. */
  format?: OutputFormat | 'auto';
  /** Number of pages/frames to keep: -1 = all (animation kept), absent = first. */
  pages?: number;
  interlace?: boolean;
  blur?: number;
  sharpen?: number;
  /** Background colour for flatten/contain, `#rrggbb` or `#rrggbbaa`. */
  background?: string;
  /** Keep EXIF/ICC metadata (Cloudflare `metadata=keep`); default strips. */
  keepMetadata?: boolean;
  /**
   * Keep only the EXIF copyright tag (Cloudflare `metadata=copyright`, its path-form default): JPEG output only,
   * and only when the source has one; every other tag is stripped. Ignored under keepMetadata.
   */
  keepCopyright?: boolean;
  /** Colour adjustments by factor, 1 = no change (Cloudflare `brightness`, `contrast`, `saturation`; 0 = grey). */
  brightness?: number;
  contrast?: number;
  saturation?: number;
  /** Clockwise quarter turns after EXIF orientation, before resizing (Cloudflare `rotate`: 90, 180, 270). */
  rotate?: 90 | 180 | 270;
  /** Mirror after rotation: h (left-right), v (top-bottom), hv (both) (Cloudflare `flip`). */
  flip?: 'h' | 'v' | 'hv';
  /** Answer the image's metadata as JSON instead of the image: weserv `output=json`, Cloudflare `format=json`. */
  describe?: 'weserv' | 'cloudflare';
}

/** The concrete format a request resolves to once Accept and the source are known. */
export interface TransformJob {
  source: Uint8Array;
  sourceFormat: ImageFormat;
  spec: TransformSpec;
  /** Already resolved: never 'auto'. */
  output: OutputFormat;
  /** Every waiter of this job went away: a job still queued is dropped (pool.ts). */
  signal?: AbortSignal;
  /** Whose request started it (the client's address), so that waiting is fair between clients. */
  client?: string;
  /** Called when the job leaves the queue and starts (the request's `queue` stage ends there). */
  onStart?: () => void;
}

export interface TransformResult {
  body: Uint8Array;
  format: OutputFormat;
  contentType: string;
  width: number;
  height: number;
}

/**
 * Transforms images. Throws RelayError: E_IMAGE_INVALID (undecodable, truncated, over the pixel limit),
 * E_UNSUPPORTED_MEDIA (a format it cannot decode), E_OVERLOADED (pool queue full or waited too long),
 * E_TRANSFORM_TIMEOUT (ran past TRANSFORM_TIMEOUT_S), E_BAD_REQUEST (an unaffordable option), E_NOT_IMPLEMENTED (edge).
 */
export interface Transformer {
  transform(job: TransformJob): Promise<TransformResult>;
  /** Refuses (400) options that no image could afford, before the source is fetched. */
  check?(spec: TransformSpec): void;
  /** Jobs waiting and running, for stats. */
  stats?(): { running: number; queued: number };
}
