// Vivaldi network coordinates (Dabek et al., 2004), with the refinements Serf uses (hashicorp/serf
// `coordinate/`): a height term for the access link, an error estimate that weights each update, an
// adjustment term averaged over a window of recent samples, and a weak gravity toward the origin so
// the whole coordinate system does not drift away over time.
//
// Pure functions. Units: coordinates are kept in SECONDS (like Serf, so figures can be compared
// with `serf rtt`); every API that takes or returns a round-trip time uses MILLISECONDS.

import { InvalidCoordinateError } from '../errors.js';

/** A point in the Vivaldi space. All fields are in seconds except `error` (dimensionless). */
export interface Coordinate {
  /** Euclidean part, `dimensionality` components, seconds. */
  vec: number[];
  /** Confidence: an estimate of the relative error of this coordinate (0 = exact). */
  error: number;
  /** Additive correction averaged over the adjustment window, seconds (may be negative). */
  adjustment: number;
  /** Height: the latency of the access link, added to every distance, seconds (>= heightMin). */
  height: number;
}

export interface VivaldiConfig {
  /** Number of Euclidean dimensions. Default 8 (Serf: 8 fits real Internet latencies well). */
  dimensionality: number;
  /** Upper bound of the error estimate; a new coordinate starts there. Default 1.5. */
  errorMax: number;
  /** ce: how fast the error estimate moves toward the latest wrongness (0..1). Default 0.25. */
  ce: number;
  /**
   * cc: the largest step a single sample may take, as a fraction of the gap (0..1). Default 0.25.
   */
  cc: number;
  /** Samples averaged into `adjustment`; 0 disables it. Default 20. */
  adjustmentWindowSize: number;
  /** Smallest height, seconds. Default 10 µs (1e-5 s). */
  heightMin: number;
  /** RTT samples per peer whose median is used (filters outliers). Default 3. */
  latencyFilterSize: number;
  /**
   * Gravity radius, seconds. Each update pulls the coordinate toward the origin with a force of
   * (distance to origin / rho)^2 seconds, so it is negligible near the origin and strong far away.
   * Default 150 s.
   */
  gravityRho: number;
  /** Largest RTT accepted as a sample, ms (larger is a stall, not a latency). Default 10,000. */
  maxRttMs: number;
  /**
   * Largest absolute value accepted for any component, height or adjustment of a coordinate from
   * a peer, seconds. Real coordinates stay within a few seconds of the origin. Default 100.
   */
  maxComponent: number;
}

export const DEFAULT_VIVALDI_CONFIG: Readonly<VivaldiConfig> = Object.freeze({
  dimensionality: 8,
  errorMax: 1.5,
  ce: 0.25,
  cc: 0.25,
  adjustmentWindowSize: 20,
  heightMin: 10e-6,
  latencyFilterSize: 3,
  gravityRho: 150,
  maxRttMs: 10_000,
  maxComponent: 100,
});

/** Below this (seconds) two points are considered to be at the same place. */
const ZERO_THRESHOLD = 1e-6;

/** A coordinate at the origin with the largest error: "we know nothing yet". */
export function newCoordinate(config: VivaldiConfig = DEFAULT_VIVALDI_CONFIG): Coordinate {
  return {
    vec: new Array<number>(config.dimensionality).fill(0),
    error: config.errorMax,
    adjustment: 0,
    height: config.heightMin,
  };
}

export function cloneCoordinate(c: Coordinate): Coordinate {
  return { vec: c.vec.slice(), error: c.error, adjustment: c.adjustment, height: c.height };
}

/**
 * Why a coordinate (typically from a peer) is unusable, or undefined if it is fine: it must have
 * the configured dimensionality, every number finite and within `maxComponent`, an error in
 * [0, errorMax] and a non-negative height.
 */
export function coordinateProblem(
  c: Coordinate,
  config: VivaldiConfig = DEFAULT_VIVALDI_CONFIG,
): string | undefined {
  if (!Array.isArray(c.vec) || c.vec.length !== config.dimensionality)
    return `expected ${config.dimensionality} dimensions`;
  const lim = config.maxComponent;
  for (const x of c.vec) {
    if (typeof x !== 'number' || !Number.isFinite(x) || Math.abs(x) > lim)
      return 'component not finite or out of bounds';
  }
  if (!Number.isFinite(c.error) || c.error < 0 || c.error > config.errorMax)
    return 'error out of range';
  if (!Number.isFinite(c.adjustment) || Math.abs(c.adjustment) > lim)
    return 'adjustment out of range';
  if (!Number.isFinite(c.height) || c.height < 0 || c.height > lim) return 'height out of range';
  return undefined;
}

export function isValidCoordinate(
  c: Coordinate,
  config: VivaldiConfig = DEFAULT_VIVALDI_CONFIG,
): boolean {
  return coordinateProblem(c, config) === undefined;
}

/** Throws InvalidCoordinateError if the coordinate is unusable (see coordinateProblem). */
export function assertValidCoordinate(
  c: Coordinate,
  config: VivaldiConfig = DEFAULT_VIVALDI_CONFIG,
): void {
  const p = coordinateProblem(c, config);
  if (p !== undefined) throw new InvalidCoordinateError(p);
}

function magnitude(v: readonly number[]): number {
  let s = 0;
  for (const x of v) s += x * x;
  return Math.sqrt(s);
}

/** Euclidean distance plus both heights, seconds, without the adjustment terms. */
function rawDistance(a: Coordinate, b: Coordinate): number {
  let s = 0;
  const n = Math.min(a.vec.length, b.vec.length);
  for (let i = 0; i < n; i++) {
    const d = a.vec[i] - b.vec[i];
    s += d * d;
  }
  return Math.sqrt(s) + a.height + b.height;
}

/** Distance in seconds, with the adjustment terms applied unless that would make it <= 0. */
function distance(a: Coordinate, b: Coordinate): number {
  const raw = rawDistance(a, b);
  const adjusted = raw + a.adjustment + b.adjustment;
  return adjusted > 0 ? adjusted : raw;
}

/** The estimated round-trip time between two coordinates, in milliseconds. */
export function estimateRtt(a: Coordinate, b: Coordinate): number {
  return distance(a, b) * 1000;
}

/** A unit vector from b toward a, and the distance between them; random if they coincide. */
function unitVectorAt(
  a: readonly number[],
  b: readonly number[],
  rng: (() => number) | undefined,
): [number[], number] {
  const d = a.map((x, i) => x - b[i]);
  const mag = magnitude(d);
  if (mag > ZERO_THRESHOLD) return [d.map((x) => x / mag), mag];
  // The two points coincide: push in a random direction so they can separate.
  if (rng) {
    const r = d.map(() => rng() - 0.5);
    const m = magnitude(r);
    if (m > ZERO_THRESHOLD) return [r.map((x) => x / m), 0];
  }
  const e = new Array<number>(a.length).fill(0);
  e[0] = 1;
  return [e, 0];
}

/** Moves `c` by `force` seconds along the line from `other` (away if force > 0). */
function applyForce(
  c: Coordinate,
  force: number,
  other: Coordinate,
  config: VivaldiConfig,
  rng: (() => number) | undefined,
): Coordinate {
  const [unit, mag] = unitVectorAt(c.vec, other.vec, rng);
  const out = cloneCoordinate(c);
  for (let i = 0; i < out.vec.length; i++) out.vec[i] += unit[i] * force;
  if (mag > ZERO_THRESHOLD) {
    out.height = Math.max(config.heightMin, ((c.height + other.height) * force) / mag + c.height);
  }
  return out;
}

/**
 * A ring of the last `adjustmentWindowSize` samples of (measured RTT - raw distance); its mean / 2
 * is the coordinate's adjustment term. Mutable state kept next to the local coordinate.
 */
export interface AdjustmentWindow {
  samples: Float64Array;
  index: number;
}

export function newAdjustmentWindow(
  config: VivaldiConfig = DEFAULT_VIVALDI_CONFIG,
): AdjustmentWindow {
  return { samples: new Float64Array(config.adjustmentWindowSize), index: 0 };
}

export interface UpdateOptions {
  /** Randomness for separating coincident points; without it a fixed direction is used. */
  rng?: () => number;
  /**
   * The adjustment window of the local coordinate (updated in place); without it, no adjustment.
   */
  adjustment?: AdjustmentWindow;
}

/**
 * One Vivaldi step: the local coordinate after observing `rttMs` to a peer at `remote`. Returns a
 * new coordinate (the input is not changed). The caller filters outliers first (CoordinateClient
 * keeps a median over the last few samples per peer). If the result would not be valid (numeric
 * blow-up), a fresh coordinate is returned, as Serf does.
 */
export function updateCoordinate(
  local: Coordinate,
  remote: Coordinate,
  rttMs: number,
  config: VivaldiConfig = DEFAULT_VIVALDI_CONFIG,
  opts: UpdateOptions = {},
): Coordinate {
  const rtt = Math.max(rttMs / 1000, ZERO_THRESHOLD);
  // Vivaldi proper: move along the line to the peer by a step weighted by our relative confidence.
  const dist = distance(local, remote);
  const wrongness = Math.abs(dist - rtt) / rtt;
  const totalError = Math.max(local.error + remote.error, ZERO_THRESHOLD);
  const weight = local.error / totalError;
  const error = Math.min(
    config.errorMax,
    config.ce * weight * wrongness + local.error * (1 - config.ce * weight),
  );
  let next = applyForce(local, config.cc * weight * (rtt - dist), remote, config, opts.rng);
  next.error = error;
  // Adjustment: the mean residual over a window, halved because both ends add theirs.
  const win = opts.adjustment;
  if (win && config.adjustmentWindowSize > 0) {
    win.samples[win.index] = rtt - rawDistance(next, remote);
    win.index = (win.index + 1) % config.adjustmentWindowSize;
    let sum = 0;
    for (const s of win.samples) sum += s;
    next.adjustment = sum / (2 * config.adjustmentWindowSize);
  }
  // Gravity toward the origin.
  const origin = newCoordinate(config);
  const g = distance(origin, next);
  next = applyForce(next, -Math.pow(g / config.gravityRho, 2), origin, config, opts.rng);
  if (!isValidCoordinate(next, { ...config, maxComponent: Number.MAX_VALUE })) {
    return newCoordinate(config);
  }
  return next;
}
