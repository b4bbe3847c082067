/** The lab's host names (lab.ts routes them to loopback servers); shared by the Node side and the workerd tests. */
export const IMAGE_HOST = 'zkres2.myzaker.com';
export const NODE_ORIGIN_HOST = 'origin.imgrelay.test';
/** IMGRELAY_PRESETS of the lab's Node origin; a Worker forwarding to it must be given the same (docs/variants.md). */
export const LAB_PRESETS = 'edgethumb:w=120&output=auto';
