/* global hexo */
// hexo-imgrelay: images of rendered posts and pages through imgrelay (see README.md). lib/ is the rewrite of
// imgrelay's `src/migrate/`, bundled by build.mjs (`npm run build`, run by `npm pack` / `npm publish`).
'use strict';

const { createPostFilter } = require('./lib/hexo-imgrelay.cjs');

const filter = createPostFilter(hexo.config.imgrelay, hexo.log);
if (filter) hexo.extend.filter.register('after_post_render', filter);
