import { describe, expect, it } from 'vitest';
import { decodeEntities, extractImageUrls, parseSrcset } from './html-images.js';

describe('extractImageUrls', () => {
  const base = 'https://blog.example.com/2021/07/post.html';

  it('finds src, srcset, data-src, data-srcset and data-original of img and source, resolved against the base', () => {
    const html = `
      <p>Intro</p>
      <img src="a.jpg" alt="x > y">
      <IMG SRC='/b.png' data-original="https://cors.zfour.workers.dev/?http://zkres2.myzaker.com/c.jpg">
      <picture><source srcset="//cdn.example.com/d.webp 1x, //cdn.example.com/d2.webp 2x" type="image/webp">
        <img data-src=https://x.example/e.jpg data-srcset="f.jpg 300w,g.jpg 600w"></picture>`;
    expect(extractImageUrls(html, base)).toEqual([
      'https://blog.example.com/2021/07/a.jpg',
      'https://blog.example.com/b.png',
      'https://cors.zfour.workers.dev/?http://zkres2.myzaker.com/c.jpg',
      'https://cdn.example.com/d.webp',
      'https://cdn.example.com/d2.webp',
      'https://x.example/e.jpg',
      'https://blog.example.com/2021/07/f.jpg',
      'https://blog.example.com/2021/07/g.jpg',
    ]);
  });

  it('decodes character references in attributes (query-form URLs are written with &amp;)', () => {
    const html = '<img src="https://img.example.com/?url=http%3A%2F%2Fa.example%2Fx.jpg&amp;w=300&#38;h=200">';
    expect(extractImageUrls(html)).toEqual(['https://img.example.com/?url=http%3A%2F%2Fa.example%2Fx.jpg&w=300&h=200']);
  });

  it('skips comments, scripts, styles, data: URLs and non-image tags; lists each URL once', () => {
    const html = `<!-- <img src="http://a.example/commented.jpg"> -->
      <script>document.write('<img src="http://a.example/scripted.jpg">')</script>
      <style>.x { background: url(http://a.example/styled.jpg) }</style>
      <a href="http://a.example/link.jpg">link</a><iframe src="http://a.example/frame.jpg"></iframe>
      <img src="data:image/gif;base64,R0lGODlhAQABAAAAACw="><img src="javascript:alert(1)">
      <img src="http://a.example/real.jpg"><img src="http://a.example/real.jpg">`;
    expect(extractImageUrls(html)).toEqual(['http://a.example/real.jpg']);
  });

  it('survives unterminated tags, comments and stray quotes', () => {
    expect(extractImageUrls('<img src="http://a.example/1.jpg"><img src="http://a.example/2.jpg')).toEqual([
      'http://a.example/1.jpg']);
    expect(extractImageUrls('<!-- <img src="http://a.example/x.jpg">')).toEqual([]);
    expect(extractImageUrls('<img " src="http://a.example/3.jpg">')).toEqual(['http://a.example/3.jpg']);
  });

  it('ignores relative URLs when there is no base', () => {
    expect(extractImageUrls('<img src="a.jpg"><img src="http://a.example/b.jpg">')).toEqual(['http://a.example/b.jpg']);
  });
});

describe('parseSrcset', () => {
  it('keeps commas inside URLs (the path form of imgrelay) and drops descriptors', () => {
    expect(parseSrcset('/cdn-cgi/image/width=300,quality=80/http://a.example/x.jpg 1x, '
      + '/cdn-cgi/image/width=600,quality=80/http://a.example/x.jpg 2x')).toEqual([
      '/cdn-cgi/image/width=300,quality=80/http://a.example/x.jpg',
      '/cdn-cgi/image/width=600,quality=80/http://a.example/x.jpg',
    ]);
  });

  it('splits candidates as browsers do: a comma ends a URL only at its end, descriptors end at a comma', () => {
    // HTML's srcset rules: "a.jpg,b.jpg" is one URL (browsers request it so), "2x,c.jpg" ends at the comma.
    expect(parseSrcset('a.jpg,b.jpg 2x,c.jpg')).toEqual(['a.jpg,b.jpg', 'c.jpg']);
    expect(parseSrcset('a.jpg, b.jpg 2x,c.jpg 3x')).toEqual(['a.jpg', 'b.jpg', 'c.jpg']);
    expect(parseSrcset('  a.jpg  300w ,  b.jpg 600w  ')).toEqual(['a.jpg', 'b.jpg']);
    expect(parseSrcset('')).toEqual([]);
  });
});

describe('decodeEntities', () => {
  it('decodes named, decimal and hex references and leaves unknown ones', () => {
    expect(decodeEntities('a&amp;b&lt;&#62;&#x41;&unknown;&amp')).toBe('a&b<>A&unknown;&');
  });
});
