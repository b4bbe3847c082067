import { describe, expect, it } from 'vitest';
import { unifiedDiff } from './diff.js';
import { sizeFromMetadata } from './metadata.js';
import type { RewriteOptions } from './rewrite-html.js';
import { Unparsable, rewriteFile } from './rewrite.js';
import { classify, urlPolicy } from './urls.js';

const BASE = 'https://img.example.com';
const options: RewriteOptions = { policy: urlPolicy(BASE, []), widths: [480, 800, 1200] };
const SRC = 'http://zkres2.myzaker.com/202107/abc_1024.jpg';
const lazyImg = (src: string, rest = '') => `<img class="lazy" data-original="${SRC}" data-width="800" data-height="1422" `
  + `src="${src}" referrerpolicy="no-referrer"${rest}>`;

describe('old-worker URLs', () => {
  it('are recognised raw, over http, and percent-encoded once or twice', () => {
    for (const query of [SRC, encodeURIComponent(SRC), encodeURIComponent(encodeURIComponent(SRC))]) {
      for (const scheme of ['https', 'http']) {
        expect(classify(`${scheme}://cors.zfour.workers.dev/?${query}`, options.policy))
          .toEqual({ source: SRC, legacy: `${BASE}/?${query}`, changed: true });
      }
    }
  });
  it('leave other hosts alone unless their bare host is included', () => {
    expect(classify(SRC, options.policy)).toBeUndefined();
    expect(classify(SRC, urlPolicy(BASE, ['zkres*.myzaker.com']))?.legacy).toBe(`${BASE}/?${SRC}`);
    expect(classify('http://evil.myzaker.com.example/x.jpg', urlPolicy(BASE, ['zkres*.myzaker.com']))).toBeUndefined();
  });
});

describe('rewriteFile', () => {
  it('moves an <img> to the legacy form and adds srcset, sizes, size and lazy loading after the first image', async () => {
    const text = `# Title\n\n${lazyImg(`https://cors.zfour.workers.dev/?${SRC}`)}\n\n${lazyImg(`https://cors.zfour.workers.dev/?${SRC}`)}\n`;
    const { text: out, moved } = await rewriteFile(text, options);
    const enc = encodeURIComponent(SRC);
    const added = ` width="800" height="1422" srcset="${BASE}/?url=${enc}&amp;w=480 480w, ${BASE}/?${SRC} 800w" `
      + `sizes="(max-width: 800px) 100vw, 800px"`;
    const moved1 = `<img class="lazy" data-original="${BASE}/?${SRC}" data-width="800" data-height="1422" src="${BASE}/?${SRC}" `
      + `referrerpolicy="no-referrer"`;
    expect(out).toBe(`# Title\n\n${moved1}${added}>\n\n${moved1}${added} loading="lazy" decoding="async">\n`);
    expect(moved).toBe(4);
    expect((await rewriteFile(out, options)).changed).toBe(false);
  });

  it('splices front matter values and keeps everything else of the file byte for byte (CRLF, comments, non-ASCII)', async () => {
    const text = `---\r\ntitle: "春天 — 花"  # 标题\r\nheadimg: https://cors.zfour.workers.dev/?${SRC}\r\n`
      + `thumbnail: 'http://cors.zfour.workers.dev/?${encodeURIComponent(SRC)}'\r\ntags: [a, b]\r\n---\r\n正文 ![花](https://cors.zfour.workers.dev/?${SRC} "花")\r\n`;
    const { text: out } = await rewriteFile(text, options);
    expect(out).toBe(`---\r\ntitle: "春天 — 花"  # 标题\r\nheadimg: ${BASE}/?${SRC}\r\n`
      + `thumbnail: '${BASE}/?${encodeURIComponent(SRC)}'\r\ntags: [a, b]\r\n---\r\n正文 ![花](${BASE}/?${SRC} "花")\r\n`);
  });

  it('asks the metadata lookup for tags without a size, and adds nothing it does not know', async () => {
    const asked: string[] = [];
    const sized = { ...options, sizeOf: async (s: string) => { asked.push(s); return { width: 1024, height: 768 }; } };
    const text = `<img src="https://cors.zfour.workers.dev/?${SRC}">`;
    const out = (await rewriteFile(text, sized)).text;
    expect(asked).toEqual([SRC]);
    expect(out).toContain(' width="1024" height="768" srcset="');
    expect(out).toContain(`w=800 800w, ${BASE}/?${SRC} 1024w" sizes="(max-width: 1024px) 100vw, 1024px"`);
    expect((await rewriteFile(text, { ...sized, sizes: '50vw' })).text).toContain(' 1024w" sizes="50vw">');
    const unknown = await rewriteFile(text, { ...options, sizeOf: async () => undefined });
    expect(unknown.text).toBe(`<img src="${BASE}/?${SRC}">`);
    expect(unknown.unsized).toEqual([SRC]);
  });

  it('refuses an unterminated <img>, an attribute swallowing markup, and broken front matter', async () => {
    await expect(rewriteFile(`text <img src="https://cors.zfour.workers.dev/?${SRC}`, options)).rejects.toThrow(Unparsable);
    await expect(rewriteFile(`<img src="https://cors.zfour.workers.dev/?${SRC}>\n<p>x</p>">`, options)).rejects.toThrow(/markup/);
    const unclosed = `<img data-width="8" src="https://cors.zfour.workers.dev/?${SRC} referrerpolicy="no-referrer">`;
    await expect(rewriteFile(unclosed, options)).rejects.toThrow(/space|stray/);
    await expect(rewriteFile('---\ntitle: [unclosed\n---\nbody', options)).rejects.toThrow(/front matter/);
    await expect(rewriteFile('---\ntitle: x\nbody', options)).rejects.toThrow(/never closed/);
  });

  it('with bare hosts, moves bare URLs of those hosts (img, lazy attribute, Markdown, front matter), and no others', async () => {
    const bare = { ...options, policy: urlPolicy(BASE, ['zkres*.myzaker.com']) };
    const other = 'http://cdn.example.org/a.jpg';
    const text = `---\nthumbnail: ${SRC}\n---\n<img src="${SRC}" data-src="${SRC}">\n![a](${SRC}) ![b](${other})\n`;
    const out = (await rewriteFile(text, bare)).text;
    expect(out).toBe(`---\nthumbnail: ${BASE}/?${SRC}\n---\n<img src="${BASE}/?${SRC}" data-src="${BASE}/?${SRC}">\n`
      + `![a](${BASE}/?${SRC}) ![b](${other})\n`);
    expect((await rewriteFile(out, bare)).changed).toBe(false);
  });

  it('keeps a self-closing tag and an unquoted value ending in a slash', async () => {
    const out = (await rewriteFile(`<img src=https://cors.zfour.workers.dev/?${SRC} data-width=9 data-height=9 alt=y/>`, options)).text;
    expect(out).toBe(`<img src=${BASE}/?${SRC} data-width=9 data-height=9 alt=y/ width="9" height="9">`);
  });
});

describe('old URLs in the other attributes of an <img>', () => {
  it('are moved too: an existing srcset, data-srcset, a title, the lazy attribute of an image whose src stays', async () => {
    const old = `https://cors.zfour.workers.dev/?${SRC}`;
    const text = `<img src="${old}" srcset="${old} 1x, ${old}?2x 2x" data-srcset="${old}&amp;x=1 800w" title="from ${old}" `
      + `data-width="800" data-height="600">\n<img src="http://other.example/x.jpg" data-original="${old}">\n`;
    const { text: out } = await rewriteFile(text, options);
    expect(out).not.toContain('cors.zfour.workers.dev');
    expect(out).toContain(`srcset="${BASE}/?${SRC} 1x, ${BASE}/?${SRC}?2x 2x" data-srcset="${BASE}/?${SRC}&amp;x=1 800w"`);
    expect(out).toContain(`title="from ${BASE}/?${SRC}"`);
    expect(out).toContain(`<img src="http://other.example/x.jpg" data-original="${BASE}/?${SRC}">`);
    expect((await rewriteFile(out, options)).changed).toBe(false);
  });
});

describe('an empty front matter', () => {
  it('is read as hexo reads it (not refused as never closed), and kept byte for byte', async () => {
    for (const eol of ['\n', '\r\n']) {
      const text = `---${eol}---${eol}![x](https://cors.zfour.workers.dev/?${SRC})${eol}`;
      const { text: out } = await rewriteFile(text, options);
      expect(out).toBe(`---${eol}---${eol}![x](${BASE}/?${SRC})${eol}`);
    }
    // A later `---` (a Markdown rule) does not make the body part of it.
    const ruled = `---\n---\nNote: see: ![x](https://cors.zfour.workers.dev/?${SRC})\n\n---\n`;
    expect((await rewriteFile(ruled, options)).text).toBe(`---\n---\nNote: see: ![x](${BASE}/?${SRC})\n\n---\n`);
  });
});

describe('an <img> inside a fenced code block', () => {
  it('is text: its old URL moves, nothing is added to it, and the first image after it is the first image', async () => {
    const old = `https://cors.zfour.workers.dev/?${SRC}`;
    const text = `How the old posts looked:\r\n\r\n\`\`\`html\r\n<img src="${old}" data-width="800" data-height="600">\r\n\`\`\`\r\n\r\n`
      + `~~~\n<img src="${old}">\n~~~\n<img src="${old}" data-width="800" data-height="600">\n`;
    const { text: out } = await rewriteFile(text, options);
    expect(out).toContain(`\`\`\`html\r\n<img src="${BASE}/?${SRC}" data-width="800" data-height="600">\r\n\`\`\``);
    expect(out).toContain(`~~~\n<img src="${BASE}/?${SRC}">\n~~~`);
    // The real image is the first one: sized and given a srcset, not lazy.
    expect(out).toMatch(/~~~\n<img src="[^"]+" data-width="800" data-height="600" width="800" height="600" srcset="[^"]+" sizes="[^"]+">\n$/);
    expect((await rewriteFile(out, options)).changed).toBe(false);
  });
});

describe('helpers', () => {
  it('diff shows the changed line with context', () => {
    expect(unifiedDiff('p.md', 'a\nb\nc\n', 'a\nB\nc\n')).toBe('--- a/p.md\n+++ b/p.md\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n');
  });
  it('reads weserv-style metadata', () => {
    expect(sizeFromMetadata({ width: 10, height: 20, format: 'jpeg', bytes: 3 })).toEqual({ width: 10, height: 20 });
    expect(sizeFromMetadata({ width: '10' })).toBeUndefined();
  });
});
