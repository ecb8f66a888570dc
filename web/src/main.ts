/**
 * The demo page: find the relay, start a room node, join the room named in the URL, and show
 * peers arriving through the relay, going direct, chatting and leaving.
 */
import { createRoomNode } from 'p2p-rooms'
import { MAX_ROOM_NAME_LENGTH, errorText, findRelays, roomFromUrl, urlForRoom } from './config.js'
import { watchRelay } from './relay-status.js'
import { Banner, ChatView, EventLog, PeerList, RoomControls, StatusView } from './ui.js'
import type { RelaySnapshot } from './relay-status.js'
import type { LeaveReason, Room, RoomNode } from 'p2p-rooms'

const banner = new Banner()
const status = new StatusView()
const controls = new RoomControls()
const peers = new PeerList()
const chat = new ChatView()
const log = new EventLog()

let node: RoomNode | undefined
let room: Room | undefined
/** Aborting it detaches every listener of the current room. */
let roomListeners: AbortController | undefined
/** Room switches run one after the other. */
let switching: Promise<void> = Promise.resolve()

const decoder = new TextDecoder()

const LEAVE_REASONS: Record<LeaveReason, string> = {
  left: 'left the room',
  unreachable: 'unreachable: the relay no longer reaches it',
  timeout: 'timed out: silent for too long'
}

async function main (): Promise<void> {
  const url = new URL(location.href)
  const firstRoom = roomFromUrl(url)
  controls.show(firstRoom, urlForRoom(url, firstRoom).href)
  controls.onSwitch((name) => {
    // without a node (no relay yet) there is nothing to switch: load the page for that room
    if (node === undefined) location.assign(urlForRoom(new URL(location.href), name))
    else void switchRoom(name, 'push')
  })

  let relays: string[]
  try {
    const found = await findRelays(url)
    relays = found.relays
    log.add('info', `relay from ${found.source}: ${relays.join(', ')}`)
  } catch (err) {
    status.setRelayPhase('failed', 'no relay address')
    fail(`No relay to connect to: ${errorText(err)}. Start everything with \`npm start\`, or add ?relay=<multiaddr> to the URL.`)
    return
  }

  status.setRelayPhase('connecting', 'connecting…', relays)
  try {
    node = await createRoomNode({ relays })
  } catch (err) {
    status.setRelayPhase('failed', 'unreachable', relays)
    fail(`Could not get a reservation on the relay at ${relays.join(', ')}: ${errorText(err)}. Is the relay running, and is this its current address?`)
    return
  }
  status.setOwnId(node.peerId)
  status.setReservationMs(node.reservationMs)
  log.add('info', `relay reservation held after ${node.reservationMs} ms; you are `, { peer: node.peerId })

  let last: RelaySnapshot | undefined
  watchRelay(node, relays, (s) => {
    status.setRelay(s)
    if (last !== undefined && last.connected > 0 && s.connected === 0) log.add('error', 'lost the connection to the relay')
    if (last !== undefined && last.connected === 0 && s.connected > 0) log.add('info', 'connected to the relay again')
    if (last !== undefined && last.reserved && !s.reserved) log.add('error', 'relay reservation lost: new peers cannot reach you')
    if (last !== undefined && !last.reserved && s.reserved) log.add('info', 'relay reservation held again')
    last = s
  })

  chat.onSend(send)
  await switchRoom(firstRoom, 'replace')
}

function fail (text: string): void {
  banner.show(text)
  log.add('error', text)
}

/** Leaves the current room (if any) and joins `name`, keeping the URL in step. */
async function switchRoom (name: string, nav: 'push' | 'replace' | 'none'): Promise<void> {
  switching = switching
    .then(async () => { await enterRoom(name, nav) })
    .catch((err) => { fail(`Could not join room "${name}": ${errorText(err)}`) })
  return switching
}

async function enterRoom (name: string, nav: 'push' | 'replace' | 'none'): Promise<void> {
  if (node === undefined) return
  if (name.length === 0 || name.length > MAX_ROOM_NAME_LENGTH) {
    chat.addError(`A room name has 1 to ${MAX_ROOM_NAME_LENGTH} characters.`)
    return
  }
  if (room?.name === name) return

  const previous = room
  room = undefined
  roomListeners?.abort()
  chat.setEnabled(false)
  peers.clear()
  const url = urlForRoom(new URL(location.href), name)
  if (nav === 'push') history.pushState(null, '', url)
  else if (nav === 'replace') history.replaceState(null, '', url)
  controls.show(name, url.href)

  if (previous !== undefined) {
    await previous.leave()
    log.add('info', `left room "${previous.name}"`)
  }
  const joined = await node.joinRoom(name)
  roomListeners = listen(joined)
  room = joined
  banner.hide()
  chat.addSystem(`You are in room "${name}". Messages go only to peers shown as direct.`)
  log.add('info', `joined room "${name}"`)
  chat.setEnabled(true)
}

function listen (r: Room): AbortController {
  const controller = new AbortController()
  const opts = { signal: controller.signal }
  const discoveredAt = new Map<string, number>()
  const ready = new Set<string>()

  r.addEventListener('peer:discover', ({ detail: { peerId, path } }) => {
    discoveredAt.set(peerId, performance.now())
    peers.set(peerId, path, path === 'direct' ? 'joining' : 'discovered')
    log.add('info', 'discovered ', { peer: peerId }, ` (${path})`)
  }, opts)

  // only for joined peers: their direct connection dropped (healing) or came back
  r.addEventListener('peer:update', ({ detail: { peerId, path } }) => {
    if (path === 'direct') {
      peers.set(peerId, 'direct', 'ready')
      log.add('info', 'direct WebRTC connection to ', { peer: peerId }, ' restored')
    } else {
      peers.set(peerId, 'relayed', 'healing')
      log.add('error', 'direct connection to ', { peer: peerId }, ' dropped, healing…')
    }
  }, opts)

  r.addEventListener('peer:join', ({ detail: { peerId } }) => {
    ready.add(peerId)
    const since = discoveredAt.get(peerId)
    const ms = since === undefined ? undefined : Math.round(performance.now() - since)
    peers.set(peerId, 'direct', 'ready', ms)
    log.add('join', { peer: peerId }, ms === undefined ? ' joined (direct)' : ` joined: direct ${ms} ms after discovery`)
  }, opts)

  r.addEventListener('peer:leave', ({ detail: { peerId, reason } }) => {
    ready.delete(peerId)
    discoveredAt.delete(peerId)
    peers.leave(peerId, LEAVE_REASONS[reason] ?? reason)
    log.add('leave', { peer: peerId }, ` ${LEAVE_REASONS[reason] ?? reason} (${reason})`)
  }, opts)

  r.addEventListener('message', ({ detail: { from, data } }) => {
    chat.addMessage({ from, text: decoder.decode(data) })
  }, opts)

  return controller
}

/** Publishes `text`; shows it as ours when sent, or says plainly why it was not. */
async function send (text: string): Promise<boolean> {
  const r = room
  if (r === undefined || node === undefined) return false
  try {
    const { recipients } = await r.publish(text)
    const n = recipients.length
    chat.addMessage({
      from: node.peerId,
      text,
      mine: true,
      note: n === 0 ? 'no direct peer yet: nobody received this' : `→ ${n} peer${n === 1 ? '' : 's'}`
    })
    return true
  } catch (err) {
    const name = err instanceof Error ? err.name : ''
    const why = name === 'MessageTooLargeError'
      ? `too large (${new TextEncoder().encode(text).byteLength.toLocaleString('en')} bytes; a room message carries at most ${r.maxMessageBytes.toLocaleString('en')} bytes)`
      : name === 'RoomClosedError' ? 'you are no longer in this room' : errorText(err)
    chat.addError(`Not sent: ${why}. [${name !== '' ? name : 'Error'}]`)
    log.add('error', `publish failed: ${errorText(err)}`)
    return false
  }
}

// back/forward between rooms
addEventListener('popstate', () => { void switchRoom(roomFromUrl(new URL(location.href)), 'none') })

// closing or reloading the tab: leave the room (peers see 'left' at once) and stop libp2p, best effort
addEventListener('pagehide', () => {
  roomListeners?.abort()
  void node?.stop().catch(() => {})
})
// a page restored from the back/forward cache has a stopped node: start afresh
addEventListener('pageshow', (e) => { if (e.persisted) location.reload() })

// for poking around from DevTools: p2pRooms.node.libp2p, p2pRooms.room.peers(), …
Object.defineProperty(window, 'p2pRooms', { value: { get node () { return node }, get room () { return room } } })

main().catch((err) => { fail(`Unexpected error: ${errorText(err)}`) })
