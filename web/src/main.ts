/**
 * The demo page: read the room, its rules and our identity from the URL, find the relay, start a
 * room node, and show peers arriving through the relay, going direct, chatting and leaving, with
 * the room's host, counters and the relays we are reachable through.
 */
import { createRoomNode } from 'p2p-rooms'
import { ChatView } from './chat-view.js'
import { describeRoom, errorText, findRelays, settingsFromUrl, urlFor, urlWithIdentity } from './config.js'
import { PeerList } from './peers-view.js'
import { RelaysView, relaySummary } from './relays-view.js'
import { RoomSession } from './room-session.js'
import { StatsView } from './stats-view.js'
import { Banner, EventLog, RoomControls, StatusView } from './ui.js'
import type { RoomChoice } from './config.js'
import type { JoinChoice } from './ui.js'
import type { RoomNode } from 'p2p-rooms'

/** How often counters, RTTs and relay states are read again; none of them has an event of its own. */
const REFRESH_MS = 1000

const banner = new Banner()
const status = new StatusView()
const controls = new RoomControls()
const peers = new PeerList()
const chat = new ChatView()
const stats = new StatsView()
const relaysView = new RelaysView()
const log = new EventLog()

/** Read once: a new identity means a new node, so changing it reloads the page. */
const settings = settingsFromUrl(new URL(location.href))

let node: RoomNode | undefined
let session: RoomSession | undefined
/** Room switches run one after the other. */
let switching: Promise<void> = Promise.resolve()

async function main (): Promise<void> {
  const url = new URL(location.href)
  showRoom(settings.room)
  controls.onJoin(onJoin)
  for (const what of settings.ignored) log.add('warn', `ignored ${what}`)
  if (url.searchParams.has('secret')) {
    log.add('warn', 'the secret was in the query string, which the browser sends to the server: moved it to the #fragment, which it does not')
  }
  // at once, not after the node started: the URL is what gets copied and bookmarked meanwhile
  history.replaceState(null, '', urlFor(url, settings.room, true))

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
    node = await createRoomNode({
      relays,
      identity: settings.identity,
      ...(settings.iceServersUrl !== undefined ? { iceServersUrl: settings.iceServersUrl } : {})
    })
  } catch (err) {
    status.setRelayPhase('failed', 'unreachable', relays)
    fail(`Could not start: ${errorText(err)}. Is the relay at ${relays.join(', ')} running, and is this its current address?`)
    return
  }
  const { identity } = node
  status.setIdentity(identity)
  // the node resolves once a relay is connected; its reservation follows a few round trips later
  const started = node
  const showReservation = (): void => { if (started.reservationMs !== undefined) status.setReservationMs(started.reservationMs) }
  showReservation()
  started.relays.addEventListener('relay:connect', showReservation, { once: true })
  peers.setSelf(identity, settings.identity)
  log.add('info', 'you are ', { peer: node.peerId }, `: identity ${identity.kind}, ${identity.restored ? 'restored from storage' : 'new'}; connected to the relay`)
  if (identity.kind !== settings.identity) {
    log.add('warn', `asked for a ${settings.identity} identity, got ${identity.kind}: that key is in use by another tab, or this browser cannot keep it`)
  }
  watchRelays(node)

  const s = session = new RoomSession(node, { peers, chat, stats, log })
  chat.onSend(async (text, to) => s.send(text, to))
  peers.onHandOffClick((peerId) => { void s.handOff(peerId) })
  setInterval(() => { s.refresh(); renderRelays() }, REFRESH_MS)
  await switchRoom(settings.room, 'replace')
}

function fail (text: string): void {
  banner.show(text)
  log.add('error', text)
}

/** The title, the form and the share link for `room`. */
function showRoom (room: RoomChoice): void {
  const here = new URL(location.href)
  controls.show(room, settings.identity, (withSecret) => urlFor(here, room, withSecret).href)
}

function onJoin ({ room, identity }: JoinChoice): void {
  // the address bar keeps the secret (in the fragment) so that a reload rejoins the same room
  const target = urlWithIdentity(urlFor(new URL(location.href), room, true), identity)
  // another identity needs another node, and without a node (no relay yet) there is nothing to
  // switch: load the page afresh for that room
  if (identity !== settings.identity || node === undefined) reloadAt(target)
  else void switchRoom(room, 'push')
}

/** Leaves the current room (if any) and joins `room`, keeping the URL in step. */
async function switchRoom (room: RoomChoice, nav: 'push' | 'replace' | 'none'): Promise<void> {
  switching = switching
    .then(async () => {
      if (session === undefined) return
      const url = urlFor(new URL(location.href), room, true)
      if (nav === 'push') history.pushState(null, '', url)
      else if (nav === 'replace') history.replaceState(null, '', url)
      showRoom(room)
      await session.enter(room)
      banner.hide()
    })
    .catch((err) => { fail(`Could not join room ${describeRoom(room)}: ${errorText(err)}`) })
  return switching
}

/** `node.relays`: the panel, the summary in "You", and each event in the log. */
function watchRelays (n: RoomNode): void {
  n.relays.addEventListener('relay:discover', ({ detail }) => {
    log.add('relay', 'learned of relay ', { peer: detail.peerId }, ` at ${detail.multiaddr}`)
    renderRelays()
  })
  n.relays.addEventListener('relay:connect', ({ detail }) => {
    log.add('relay', 'reserved on relay ', { peer: detail.peerId }, ': room peers can reach you through it')
    renderRelays()
  })
  n.relays.addEventListener('relay:disconnect', ({ detail }) => {
    log.add('warn', 'lost the reservation on relay ', { peer: detail.peerId }, ': looking for another')
    renderRelays()
  })
  renderRelays()
}

function renderRelays (): void {
  if (node === undefined) return
  const list = node.relays.list()
  relaysView.render(list)
  const { state, text } = relaySummary(list)
  status.setRelay(state, text)
}

/** Loads `url`, even when it differs from the current one only in its fragment. */
function reloadAt (url: URL): void {
  const here = new URL(location.href)
  here.hash = ''
  const there = new URL(url)
  there.hash = ''
  if (here.href === there.href) {
    history.replaceState(null, '', url)
    location.reload()
  } else {
    location.assign(url)
  }
}

// back/forward between rooms (and a fragment edited by hand)
addEventListener('popstate', () => {
  const next = settingsFromUrl(new URL(location.href))
  if (next.identity !== settings.identity) location.reload()
  else void switchRoom(next.room, 'none')
})

// closing or reloading the tab: leave the room (peers see 'left' at once) and stop libp2p, best effort
addEventListener('pagehide', () => {
  session?.detach()
  void node?.stop().catch(() => {})
})
// a page restored from the back/forward cache has a stopped node: start afresh
addEventListener('pageshow', (e) => { if (e.persisted) location.reload() })

// for poking around from DevTools: p2pRooms.node.relays.list(), p2pRooms.room.stats(), …
Object.defineProperty(window, 'p2pRooms', { value: { get node () { return node }, get room () { return session?.current } } })

main().catch((err) => { fail(`Unexpected error: ${errorText(err)}`) })
