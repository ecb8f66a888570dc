// An app that only calls createRoomNode (npm test › size-limit measures its first chunk).
import { createRoomNode } from 'p2p-rooms'

;(globalThis as { createRoomNode?: unknown }).createRoomNode = createRoomNode
