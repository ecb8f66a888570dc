/**
 * One named error per condition. Callers test `err.name`, never the message.
 */

/** No relay reservation was obtained within `reservationTimeout`. */
export class ReservationTimeoutError extends Error {
  static name = 'ReservationTimeoutError'
  name = 'ReservationTimeoutError'
}

/** `createRoomNode` was called without a single relay multiaddr. */
export class NoRelaysError extends Error {
  static name = 'NoRelaysError'
  name = 'NoRelaysError'
}

/** A room name is empty, too long, or not a string. */
export class InvalidRoomNameError extends Error {
  static name = 'InvalidRoomNameError'
  name = 'InvalidRoomNameError'
}

/** `publish` was given more than `maxMessageBytes`. */
export class MessageTooLargeError extends Error {
  static name = 'MessageTooLargeError'
  name = 'MessageTooLargeError'
}

/** The room was left, or its node stopped, before the call. */
export class RoomClosedError extends Error {
  static name = 'RoomClosedError'
  name = 'RoomClosedError'
}
