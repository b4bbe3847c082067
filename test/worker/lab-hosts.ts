/** The lab's host names (lab.ts routes them to loopback servers); shared by the Node side and the workerd tests. */
export const IMAGE_HOST = 'zkres2.myzaker.com';
export const NODE_ORIGIN_HOST = 'origin.imgrelay.test';
