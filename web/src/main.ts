/**
 * The demo page: read the room, its rules and our identity from the URL, find the relay, start a
 * room node, and show the conversation, with the people in it and how each is reached; the
 * network details wait in the "Network" drawer.
 *
 * `p2p-rooms` (libp2p, WebRTC, gossipsub: most of the page's bytes) is loaded with a dynamic
 * import, so the page paints and shows its progress while that code is still on its way.
 */
import { ChatView } from './chat-view.js'
import {
  DEFAULT_ROOM, describeRoom, errorText, findRelays, inviteUrl, newRoomSecret, settingsFromUrl, urlFor, urlWithIdentity, urlWithoutRelay
} from './config.js'
import { InviteDialog, RoomDialog } from './dialogs.js'
import { byId, duration, h, plural, renameAll } from './dom.js'
import { FilesView } from './files-view.js'
import { MediaView } from './media-view.js'
import { Directory, generatedName, storeName, storedName } from './names.js'
import { NetworkView } from './network-view.js'
import { PeopleView } from './people-view.js'
import { relayProblem } from './problems.js'
import { MeetingProgress } from './progress.js'
import { RoomSession } from './room-session.js'
import { Theme } from './theme.js'
import type { RoomChoice } from './config.js'
import type { JoinChoice } from './dialogs.js'
import type { Action, Problem } from './problems.js'
import type { RoomNode } from 'p2p-rooms'

// the library (libp2p, WebRTC, gossipsub) is most of the page's bytes: its download starts now,
// alongside /relay.json, while the page paints its first screen
const library = import('p2p-rooms')
library.catch(() => {}) // awaited in startNode, which says what went wrong

/** How often counters, RTTs and relay states are read again; none of them has an event of its own. */
const REFRESH_MS = 1000

const dir = new Directory()
const progress = new MeetingProgress()
const chat = new ChatView(dir)
const people = new PeopleView(dir)
const network = new NetworkView(dir)
const files = new FilesView(dir)
const media = new MediaView(dir)
const roomDialog = new RoomDialog()
const invite = new InviteDialog()
new Theme().start()
roomDialog.setSecretMaker(newRoomSecret)

/** Read once: a new identity means a new node, so changing it reloads the page. */
const settings = settingsFromUrl(new URL(location.href))

let node: RoomNode | undefined
let session: RoomSession | undefined
let relays: string[] = []
/** The room shown in the header: the one joined, or being joined. */
let shownRoom: RoomChoice | undefined = settings.room
/** Room switches run one after the other. */
let switching: Promise<void> = Promise.resolve()
let unread = 0
let pickedName = storedName()

const app = byId<HTMLElement>('app')
const roomName = byId<HTMLElement>('room-name')
const tagPrivate = byId<HTMLElement>('tag-private')
const tagType = byId<HTMLElement>('tag-type')
const inviteButtons = [byId<HTMLButtonElement>('invite-btn'), byId<HTMLButtonElement>('meeting-invite')]
const meeting = byId<HTMLElement>('meeting')
const meetingHint = byId<HTMLElement>('meeting-hint')

function main (): void {
  for (const what of settings.ignored) network.add('warn', `ignored ${what}`)
  if (settings.secretInQuery) {
    network.add('warn', 'the secret was in the query string, which the browser sends to the server: moved it to the #fragment, which it does not')
  }
  wireControls()
  showRoom(settings.room)
  if (settings.room !== undefined) {
    // at once, not after the node started: the URL is what gets copied and bookmarked meanwhile
    history.replaceState(null, '', urlFor(new URL(location.href), settings.room, true))
  }
  if (settings.room === undefined || settings.needsSecret) askForRoom()
  // the relay does not depend on the room: reach it while the person picks one
  void startNode()
}

function wireControls (): void {
  roomDialog.onJoin(onJoin)
  byId('room-btn').addEventListener('click', () => {
    roomDialog.open({
      room: shownRoom?.name ?? '',
      type: shownRoom?.type ?? settings.type,
      identity: settings.identity,
      name: pickedName,
      ...(node !== undefined ? { generatedName: generatedName(node.peerId) } : {}),
      title: 'Join a room',
      intro: 'Pick a room by name, or make a new private one. Everyone who enters the same name (and secret) meets here.',
      dismissible: session?.current !== undefined || node === undefined
    })
  })
  for (const b of inviteButtons) b.addEventListener('click', () => { openInvite() })
  const peopleButton = byId<HTMLButtonElement>('people-btn')
  peopleButton.addEventListener('click', () => {
    const open = app.dataset.people !== 'open'
    app.dataset.people = open ? 'open' : 'closed'
    peopleButton.setAttribute('aria-expanded', String(open))
  })
  chat.onSend(async (text, to) => session?.send(text, to) ?? false)
  people.onHandOffClick((peerId) => { void session?.handOff(peerId) })
  people.onPersonClick((peerId) => { chat.pickTarget(peerId) })
  people.onRenameSubmit((name) => { setPickedName(name) })
  dir.onChange((peerId) => { renameAll(dir, peerId) })
  // unread messages count in the tab's title while the tab is not looked at
  const seen = (): void => { if (!document.hidden && document.hasFocus()) { unread = 0; refreshTitle() } }
  addEventListener('focus', seen)
  document.addEventListener('visibilitychange', seen)
}

/** The first screen when the URL names no room, a bad one, or a private one without its secret. */
function askForRoom (): void {
  const badName = settings.roomNameProblem !== undefined
  const intro = settings.needsSecret
    ? 'This room is private. Ask whoever sent you the link for its secret, or for a link that holds it.'
    : badName
      ? 'The room name in this link cannot be used. Fix it below, or pick another room.'
      : settings.roomProblem ?? 'Pick a room by name. Everyone who enters the same name meets here, and messages go straight between browsers.'
  roomDialog.open({
    room: settings.room?.name ?? (settings.roomProblem !== undefined ? settings.roomInput : DEFAULT_ROOM),
    type: settings.type,
    identity: settings.identity,
    name: pickedName,
    title: settings.needsSecret ? 'Enter the room\'s secret' : 'Join a room',
    intro,
    ...(settings.roomNameProblem !== undefined ? { problem: settings.roomNameProblem } : {}),
    dismissible: false,
    askSecret: settings.needsSecret
  })
  if (settings.needsSecret) shownRoom = undefined
  progress.setStatus(badName ? 'error' : 'waiting', badName ? 'The link\'s room name cannot be used' : settings.needsSecret ? 'Waiting for the room\'s secret' : 'Pick a room')
}

async function startNode (): Promise<void> {
  hideProblem()
  progress.reset('relay')
  progress.set('relay', 'active')
  if (shownRoom !== undefined) progress.setStatus('starting', 'Reaching the relay…')
  const started = performance.now()
  let lib: typeof import('p2p-rooms')
  try {
    const found = await findRelays(settings.relayOverride)
    relays = found.relays
    network.add('info', `relay from ${found.source}: ${relays.join(', ')}`)
    lib = await library
  } catch (err) {
    progress.set('relay', 'failed', 'No relay to reach')
    showProblem({
      title: 'This page does not know which relay to use',
      text: `${err instanceof Error ? err.message : String(err)} Start the demo with \`npm start\`, or add ?relay=<multiaddr> to the address.`,
      actions: ['retry'],
      detail: errorText(err)
    })
    return
  }
  // the library's own strong secrets, once it has them (createRoomSecret)
  const maker = (lib as { createRoomSecret?: () => string }).createRoomSecret
  if (typeof maker === 'function') roomDialog.setSecretMaker(() => maker())

  try {
    node = await lib.createRoomNode({
      relays,
      identity: settings.identity,
      ...(settings.iceServersUrl !== undefined ? { iceServersUrl: settings.iceServersUrl } : {})
    })
  } catch (err) {
    const problem = relayProblem(err, relays, settings.relayOverride.length > 0)
    progress.set('relay', 'failed', problem.title, duration(performance.now() - started))
    network.add('error', `could not start: ${errorText(err)}`)
    showProblem(problem)
    return
  }
  const n = node
  progress.set('relay', 'done')
  // createRoomNode resolves once the relay is connected; the reservation follows a few round trips later
  const showReservation = (): void => {
    const ms = n.reservationMs
    if (ms === undefined) return
    progress.set('reserved', 'done', 'Reserved: people can reach you', duration(ms))
    network.setReservationMs(ms)
  }
  showReservation()
  n.relays.addEventListener('relay:connect', showReservation, { once: true })
  network.setIdentity(n.identity, settings.identity)
  network.add('info', `you are ${n.peerId}: identity ${n.identity.kind}, ${n.identity.restored ? 'restored from storage' : 'new'}; connected to the relay`)
  chat.setSelf(n.peerId)
  dir.setPicked(n.peerId, pickedName)
  people.setSelf(n.peerId, selfNote())
  network.setName(n.peerId)
  watchRelays(n)

  session = new RoomSession(n, { people, chat, network, progress, dir, files, media }, {
    onIncoming: () => {
      if (document.hidden || !document.hasFocus()) {
        unread++
        refreshTitle()
      }
    },
    onChange: () => { refreshStatus() }
  })
  session.setPickedName(pickedName)
  setInterval(() => { session?.refresh(); renderRelays(); refreshStatus() }, REFRESH_MS)
  if (shownRoom !== undefined && !roomDialog.isOpen) await switchRoom(shownRoom, 'replace')
  else refreshStatus()
}

function selfNote (): string {
  if (node === undefined) return ''
  return pickedName === undefined ? 'You · generated name' : 'You'
}

function setPickedName (name: string | undefined): void {
  pickedName = name
  storeName(name)
  if (node !== undefined) {
    dir.setPicked(node.peerId, name)
    renameAll(dir, node.peerId)
    people.setSelfNote(selfNote())
  }
  session?.setPickedName(name)
}

function onJoin ({ room, identity, name }: JoinChoice): void {
  if (name !== pickedName) setPickedName(name)
  // the address bar keeps the secret (in the fragment) so that a reload rejoins the same room
  const target = urlWithIdentity(urlFor(new URL(location.href), room, true), identity)
  // another identity needs another node: load the page afresh for that room
  if (identity !== settings.identity) {
    reloadAt(target)
    return
  }
  shownRoom = room
  if (node === undefined) {
    history.pushState(null, '', target)
    showRoom(room)
    if (!problemShown()) progress.setStatus('starting', 'Reaching the relay…')
    return
  }
  void switchRoom(room, 'push')
}

/** Leaves the current room (if any) and joins `room`, keeping the URL in step. */
async function switchRoom (room: RoomChoice, nav: 'push' | 'replace' | 'none'): Promise<void> {
  switching = switching
    .then(async () => {
      if (session === undefined) return
      const url = urlFor(new URL(location.href), room, true)
      if (nav === 'push') history.pushState(null, '', url)
      else if (nav === 'replace') history.replaceState(null, '', url)
      shownRoom = room
      showRoom(room)
      hideProblem()
      await session.enter(room)
      refreshStatus()
    })
    .catch((err) => {
      showProblem({ title: 'Could not join the room', text: `Joining ${describeRoom(room)} failed: ${err instanceof Error ? err.message : String(err)}`, actions: ['retry'], detail: errorText(err) })
      network.add('error', `could not join ${describeRoom(room)}: ${errorText(err)}`)
    })
  return switching
}

/** The header, the title and the invite buttons for `room`. */
function showRoom (room: RoomChoice | undefined): void {
  roomName.textContent = room?.name ?? 'No room yet'
  roomName.title = room === undefined ? '' : room.name.slice(0, 300)
  tagPrivate.hidden = room?.secret === undefined
  tagType.hidden = room === undefined || room.type === 'broadcast'
  tagType.textContent = room?.type === 'one-way' ? 'One-way' : room?.type === 'pairwise' ? 'Pairwise' : ''
  tagType.title = room?.type === 'one-way' ? 'Only the host posts; everyone reads' : room?.type === 'pairwise' ? 'Each message goes to one person' : ''
  for (const b of inviteButtons) b.disabled = room === undefined
  refreshTitle()
}

function refreshTitle (): void {
  const name = shownRoom === undefined ? '' : shownRoom.name.length > 40 ? `${shownRoom.name.slice(0, 39)}…` : shownRoom.name
  document.title = `${unread > 0 ? `(${unread}) ` : ''}${name !== '' ? `${name} · ` : ''}p2p-rooms`
}

/** The header's status line, and whether the conversation still shows the meeting steps. */
function refreshStatus (): void {
  if (problemShown()) return
  if (session?.current === undefined) return
  const direct = session.directCount
  const connecting = session.connectingPeers
  const relayState = node === undefined ? undefined : relaySummary(node)
  if (direct > 0) {
    progress.setStatus('direct', `Direct to ${plural(direct, 'person', 'people')}${relayState === 'down' ? ' · relay lost, new people cannot find you' : ''}`)
  } else if (connecting.length > 0) {
    progress.setStatus('connecting', `Connecting to ${dir.nameOf(connecting[0])}${connecting.length > 1 ? ` and ${plural(connecting.length - 1, 'other')}` : ''}…`)
  } else if (relayState === 'down') {
    progress.setStatus('error', 'Relay lost: new people cannot find you. Reconnecting…')
  } else {
    progress.setStatus('waiting', 'Waiting for others to join')
  }
  // the steps stay in the conversation until the first person is reached directly
  meeting.hidden = direct > 0 || (session.current === undefined && !problemShown())
  meetingHint.hidden = connecting.length > 0
}

function relaySummary (n: RoomNode): 'ok' | 'down' {
  return n.relays.list().some((r) => r.reserved || r.connected) ? 'ok' : 'down'
}

function openInvite (): void {
  const room = shownRoom
  if (room === undefined) return
  const here = new URL(location.href)
  // pass on only a ?relay= this page actually reached: a broken one would strand the opener
  const reached = new Set(node?.relays.list().filter((r) => r.connected || r.reserved).map((r) => r.peerId) ?? [])
  const relaysToShare = settings.relayOverride.filter((a) => reached.has(a.split('/p2p/').pop() ?? ''))
  void invite.open({
    room,
    link: inviteUrl(here, room, { withSecret: true, relays: relaysToShare }).href,
    ...(room.secret !== undefined ? { linkWithoutSecret: inviteUrl(here, room, { withSecret: false, relays: relaysToShare }).href } : {})
  })
}

/** `node.relays`: the drawer, and each event in the log. */
function watchRelays (n: RoomNode): void {
  n.relays.addEventListener('relay:discover', ({ detail }) => {
    network.add('relay', `learned of relay …${detail.peerId.slice(-6)} at ${detail.multiaddr}`)
    renderRelays()
  })
  n.relays.addEventListener('relay:connect', ({ detail }) => {
    network.add('relay', `reserved on relay …${detail.peerId.slice(-6)}: people can reach you through it`)
    renderRelays()
    refreshStatus()
  })
  n.relays.addEventListener('relay:disconnect', ({ detail }) => {
    network.add('warn', `lost the reservation on relay …${detail.peerId.slice(-6)}: looking for another`)
    renderRelays()
    refreshStatus()
  })
  renderRelays()
}

function renderRelays (): void {
  if (node !== undefined) network.renderRelays(node.relays.list())
}

const problem = {
  el: byId<HTMLElement>('problem'),
  title: byId<HTMLElement>('problem-title'),
  text: byId<HTMLElement>('problem-text'),
  actions: byId<HTMLElement>('problem-actions'),
  detail: byId<HTMLElement>('problem-detail')
}

const ACTION_LABELS: Record<Action, string> = {
  retry: 'Try again',
  'default-relay': 'Use the default relay',
  reload: 'Reload the page'
}

function showProblem (p: Problem): void {
  problem.title.textContent = p.title
  problem.text.textContent = p.text
  problem.detail.textContent = p.detail
  problem.actions.replaceChildren(...p.actions.map((action, i) => {
    const b = h('button', `btn ${i === 0 ? 'primary' : 'secondary'}`, ACTION_LABELS[action])
    b.type = 'button'
    b.dataset.action = action
    b.addEventListener('click', () => { act(action) })
    return b
  }))
  problem.el.hidden = false
  meeting.hidden = false
  meetingHint.hidden = true
  progress.setStatus('error', p.title)
  chat.setComposer({ enabled: false, reason: p.title, tone: 'error' })
}

function hideProblem (): void {
  problem.el.hidden = true
}

function problemShown (): boolean {
  return !problem.el.hidden
}

function act (action: Action): void {
  if (action === 'default-relay') location.assign(urlWithoutRelay(new URL(location.href)))
  else if (action === 'reload') location.reload()
  else if (node === undefined) void startNode()
  else if (shownRoom !== undefined) {
    hideProblem()
    void switchRoom(shownRoom, 'none')
  }
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
  if (next.identity !== settings.identity || next.room === undefined) location.reload()
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

main()
