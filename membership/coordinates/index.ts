// Public surface of the network coordinates (Vivaldi) module.
export {
  type AdjustmentWindow,
  type Coordinate,
  type UpdateOptions,
  type VivaldiConfig,
  DEFAULT_VIVALDI_CONFIG,
  assertValidCoordinate,
  cloneCoordinate,
  coordinateProblem,
  estimateRtt,
  isValidCoordinate,
  newAdjustmentWindow,
  newCoordinate,
  updateCoordinate,
} from './vivaldi.js';
export { CoordinateClient, type CoordinateClientOptions } from './client.js';
