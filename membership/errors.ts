// Errors of the membership module, with stable names and codes.
//
// Bad input from a peer is never thrown through the runtime: the codec throws a DecodeError, which
// the runtime counts (metric) and drops. The other classes are for programming or operator errors
// (a bad config value, metadata that is too large) and carry a message naming the problem.

export class MembershipError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = 'MembershipError';
  }
}

/**
 * Bytes from a peer could not be decoded into a valid SWIM message: not CBOR, too large, wrong
 * shape, a field of the wrong type, too long, out of range or not finite. `reason` is a short,
 * stable description (for logs and a metric label: keep it low-cardinality).
 */
export class DecodeError extends MembershipError {
  readonly reason: string;
  constructor(reason: string, options?: ErrorOptions) {
    super('decode_failed', `cannot decode SWIM message: ${reason}`, options);
    this.reason = reason;
    this.name = 'DecodeError';
  }
}

/** One of our own messages would exceed the codec's size limit (so it is never sent). */
export class EncodeError extends MembershipError {
  constructor(message: string) {
    super('encode_failed', message);
    this.name = 'EncodeError';
  }
}

/** Member metadata given to the core (at start or by updateMeta) breaks a documented limit. */
export class InvalidMetaError extends MembershipError {
  readonly field: string;
  constructor(field: string, message: string) {
    super('meta_invalid', `member metadata ${field}: ${message}`);
    this.field = field;
    this.name = 'InvalidMetaError';
  }
}

/** A SWIM configuration value is invalid (wrong type, out of range, inconsistent). */
export class SwimConfigError extends MembershipError {
  readonly key: string;
  constructor(key: string, message: string) {
    super('membership_config_invalid', `membership.${key}: ${message}`);
    this.key = key;
    this.name = 'SwimConfigError';
  }
}

/** A network coordinate is unusable (wrong dimensionality, not finite, out of bounds). */
export class InvalidCoordinateError extends MembershipError {
  constructor(message: string) {
    super('coordinate_invalid', message);
    this.name = 'InvalidCoordinateError';
  }
}

/** A registration would make this agent's catalog larger than its peers accept (HTTP 413). */
export class CatalogFullError extends MembershipError {
  constructor(message: string) {
    super('catalog_full', message);
    this.name = 'CatalogFullError';
  }
}
