/**
 * The EXIF copyright tag (IFD0 0x8298), for Cloudflare's `metadata=copyright`: the one tag kept, everything else
 * (GPS, camera serials, dates) stripped. Read from the EXIF block the header probe already has (the JPEG walk's
 * APP1, or sharp's `metadata().exif`): no second decode. Unreadable EXIF keeps nothing, never fails the transform.
 */
import exifReader from 'exif-reader';

/** The longest copyright kept: a real notice is a line; more is not a notice (and would ride on every response). */
export const MAX_COPYRIGHT_CHARS = 1024;

export function copyrightOf(exif: Uint8Array | undefined): string | undefined {
  if (!exif || exif.byteLength === 0) return undefined;
  let tag: unknown;
  try {
    tag = exifReader(Buffer.from(exif.buffer, exif.byteOffset, exif.byteLength)).Image?.Copyright;
  } catch {
    return undefined;
  }
  if (typeof tag !== 'string') return undefined;
  // ASCII tags end in NUL; an empty notice (or one of only padding) is no notice.
  const notice = tag.replace(/\0+$/, '').trim();
  return notice && notice.length <= MAX_COPYRIGHT_CHARS ? notice : undefined;
}
