// edge-sites/: the site model — placement of images across sites, site-aware replication of images
// and of the replicated state.
export * from './placement.js';
export * from './sources.js';
export type {
  ImageComponents,
  ImageMembership,
  ImageOptions,
  ImageSummary,
  LocalState,
} from './images/options.js';
export { ImageService } from './images/service.js';
export type { SiteStatus } from './images/status.js';
export {
  KvService,
  type KvComponents,
  type KvEvent,
  type KvMembership,
  type KvOptions,
} from './state/service.js';
