/** Bundles src/migrate/hexo-filter.ts into <outDir>/hexo-imgrelay.cjs (default: hexo/lib). */
export function buildPlugin(outDir?: string): Promise<void>;
