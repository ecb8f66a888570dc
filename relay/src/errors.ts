/**
 * The relay's named errors; callers test `err.name`. The binary exits with code 2
 * (`EXIT_INVALID_CONFIG`) on every one of them, printing only its message.
 */

/** A command-line option, environment variable or config file key has an invalid value. */
export class InvalidConfigError extends Error {
  static name = 'InvalidConfigError'
  name = 'InvalidConfigError'
}

/** The identity (private key) file can be read by group or others: refused, it is a secret. */
export class InsecureIdentityFileError extends Error {
  static name = 'InsecureIdentityFileError'
  name = 'InsecureIdentityFileError'
}

/** The identity file is not a libp2p private key (protobuf), or cannot be read or written. */
export class InvalidIdentityFileError extends Error {
  static name = 'InvalidIdentityFileError'
  name = 'InvalidIdentityFileError'
}

/**
 * Another running relay holds the lock on this identity file: two relays on one key would share
 * one peer ID, and a federation (and every browser) would take them for one relay.
 */
export class IdentityInUseError extends Error {
  static name = 'IdentityInUseError'
  name = 'IdentityInUseError'
}
