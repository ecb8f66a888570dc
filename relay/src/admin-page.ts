/**
 * The relay's admin page, `GET /` on its HTTP endpoint (`--http`): what `/status` holds, as an
 * operator wants to see it. Peers, reservations, rooms followed (a count: never a name or topic),
 * circuits opened and how they ended, upgrades to direct, refusals by reason, federated relays,
 * uptime, and charts of the last hour, refreshing every few seconds.
 *
 * One self-contained HTML page (inline CSS and JS, no build step), served as a string. The same
 * path answers JSON to `Accept: application/json` (the page polls it): `/status` plus the
 * federated relays' peer IDs and the sampled history. The history is kept here, server-side, so a
 * page opened after an hour of running shows that hour: one sample every `sampleIntervalMs`,
 * `windowMs` of them, a few KiB.
 */
import { DEFAULT_ADMIN_SAMPLE_INTERVAL_MS, DEFAULT_ADMIN_WINDOW_MS } from './constants.js'
import type { Relay, RelayStatus } from './index.js'
import type { IncomingMessage, ServerResponse } from 'node:http'

/** One point of the charts; counters are cumulative, the page turns them into rates. */
export interface AdminSample {
  /** ms since the epoch */
  t: number
  peers: number
  reservations: number
  rooms: number
  circuitsOpen: number
  circuitsOpened: number
  upgrades: number
  refusals: number
}

export interface AdminSnapshot {
  status: RelayStatus
  /** Peer IDs of the relays we federate with and are connected to. */
  federatedRelays: string[]
  history: AdminSample[]
  sampleIntervalMs: number
}

export interface AdminPageInit {
  /** How often a point is added to the charts, in ms. @default 10000 */
  sampleIntervalMs?: number
  /** How far back the charts go, in ms. @default 3600000 */
  windowMs?: number
}

export interface AdminPage {
  /** Starts sampling (idempotent). */
  start(): void
  stop(): void
  /** Answers `GET /` (or `HEAD /`): the page, or its data as JSON. */
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>
}

export function createAdminPage (relay: Relay, init: AdminPageInit = {}): AdminPage {
  const options = {
    sampleIntervalMs: init.sampleIntervalMs ?? DEFAULT_ADMIN_SAMPLE_INTERVAL_MS,
    windowMs: init.windowMs ?? DEFAULT_ADMIN_WINDOW_MS
  }
  const interval = options.sampleIntervalMs
  const keep = Math.max(2, Math.ceil(options.windowMs / interval))
  const history: AdminSample[] = []
  let timer: ReturnType<typeof setInterval> | undefined

  const federated = (): string[] => {
    try {
      return relay.libp2p.services.federation.peers()
    } catch {
      return []
    }
  }
  const sampleOf = (s: RelayStatus): AdminSample => ({
    t: Date.now(),
    peers: s.connectedPeers,
    reservations: s.reservations,
    rooms: s.roomsFollowed,
    circuitsOpen: s.counters.circuits.open,
    circuitsOpened: s.counters.circuits.opened,
    upgrades: s.counters.circuits.upgrades,
    refusals: Object.values(s.counters.refusals).reduce((a, n) => a + n, 0)
  })
  const sample = async (): Promise<void> => {
    history.push(sampleOf(await relay.status()))
    if (history.length > keep) history.splice(0, history.length - keep)
  }

  return {
    start () {
      if (timer !== undefined) return
      void sample().catch(() => {})
      timer = setInterval(() => { void sample().catch(() => {}) }, interval)
      // sampling alone must not keep a stopping relay's process alive
      timer.unref?.()
    },
    stop () {
      clearInterval(timer)
      timer = undefined
    },
    async handle (req, res) {
      const wantsJson = (req.headers.accept ?? '').includes('application/json') || new URL(req.url ?? '/', 'http://relay').searchParams.has('json')
      if (!wantsJson) {
        res.writeHead(200, {
          'content-type': 'text/html; charset=utf-8',
          'cache-control': 'no-store',
          // the page runs only its own inline script and talks only to this origin
          'content-security-policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
          'x-content-type-options': 'nosniff'
        })
        res.end(req.method === 'HEAD' ? undefined : PAGE)
        return
      }
      const status = await relay.status()
      // the latest point is always now, whatever the sampling interval
      const snapshot: AdminSnapshot = { status, federatedRelays: federated(), history: [...history, sampleOf(status)], sampleIntervalMs: interval }
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
      res.end(req.method === 'HEAD' ? undefined : JSON.stringify(snapshot))
    }
  }
}

/** Refusal reasons in words, by the keys `/status` uses. */
const REFUSALS = {
  'max-connections': 'connection limit reached',
  'connection-rate': 'too many connections per second from one IP',
  'max-reservations': 'reservation limit reached',
  'reservations-per-ip': 'too many reservations from one IP',
  'shutting-down': 'relay shutting down',
  'max-rooms': 'room-following limit reached'
}

const CIRCUIT_ENDS = {
  endpoint: 'closed by a peer',
  'duration-limit': 'hit the duration limit',
  'data-limit': 'hit the data limit',
  relay: 'closed by the relay'
}

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>p2p-rooms relay</title>
<style>
:root { color-scheme: light dark; --bg: #f5f6f8; --card: #fff; --text: #1b2130; --muted: #5f6878; --line: #dfe3ea; --accent: #3559e0; --ok: #177a46; --warn: #9a5b00; --bad: #c0362c;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--text); }
@media (prefers-color-scheme: dark) { :root { --bg: #15171c; --card: #1c1f26; --text: #e7e9ee; --muted: #9aa3b2; --line: #2f343e; --accent: #7d96ff; --ok: #4cc38a; --warn: #f0a94a; --bad: #ff7468; } }
* { box-sizing: border-box; }
body { margin: 0; padding: 1.25rem; max-width: 1200px; margin-inline: auto; }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 0.5rem 1rem; margin-bottom: 1rem; }
h1 { font-size: 1.35rem; margin: 0; }
h2 { font-size: 0.75rem; text-transform: uppercase; letter-spacing: 0.06em; color: var(--muted); margin: 0 0 0.6rem; }
code { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.85em; overflow-wrap: anywhere; }
.muted { color: var(--muted); }
.live { display: inline-flex; align-items: center; gap: 0.35rem; font-size: 0.85rem; color: var(--muted); }
.live::before { content: ""; width: 0.55rem; height: 0.55rem; border-radius: 50%; background: var(--ok); }
.live[data-state="stale"]::before { background: var(--bad); }
.grid { display: grid; gap: 1rem; grid-template-columns: repeat(auto-fit, minmax(10rem, 1fr)); }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 12px; padding: 0.9rem 1rem; min-width: 0; }
.big { font-size: 2rem; font-weight: 700; font-variant-numeric: tabular-nums; line-height: 1.1; }
.sub { font-size: 0.82rem; color: var(--muted); }
svg.chart { width: 100%; height: 56px; display: block; margin-top: 0.5rem; }
svg.chart path.line { fill: none; stroke: var(--accent); stroke-width: 1.5; }
svg.chart path.area { fill: var(--accent); opacity: 0.12; stroke: none; }
.wide { margin-top: 1rem; display: grid; gap: 1rem; grid-template-columns: repeat(auto-fit, minmax(22rem, 1fr)); }
table { width: 100%; border-collapse: collapse; font-size: 0.9rem; }
td { padding: 0.3rem 0; border-top: 1px solid var(--line); vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; font-weight: 600; padding-left: 1rem; }
tr[data-zero="true"] td { color: var(--muted); font-weight: 400; }
ul { margin: 0; padding-left: 1.1rem; }
footer { margin-top: 1.25rem; font-size: 0.8rem; color: var(--muted); }
</style>
</head>
<body>
<header>
  <h1>p2p-rooms relay</h1>
  <span class="live" id="live" data-state="live">live</span>
  <span class="muted">up <span id="uptime">–</span></span>
  <code id="peer-id" class="muted"></code>
</header>
<section class="grid" aria-label="Now">
  <div class="card"><h2>Peers connected</h2><div class="big" id="peers">–</div><div class="sub"><span id="connections">–</span> connections</div><svg class="chart" id="chart-peers" role="img" aria-label="Peers connected, last hour"></svg></div>
  <div class="card"><h2>Reservations</h2><div class="big" id="reservations">–</div><div class="sub">of at most <span id="max-reservations">–</span></div><svg class="chart" id="chart-reservations" role="img" aria-label="Reservations, last hour"></svg></div>
  <div class="card"><h2>Rooms followed</h2><div class="big" id="rooms">–</div><div class="sub">a count only: room names are never shown</div><svg class="chart" id="chart-rooms" role="img" aria-label="Rooms followed, last hour"></svg></div>
  <div class="card"><h2>Circuits open</h2><div class="big" id="circuits-open">–</div><div class="sub"><span id="circuits-rate">–</span> opened per minute</div><svg class="chart" id="chart-circuits" role="img" aria-label="Circuits opened per minute, last hour"></svg></div>
</section>
<section class="wide">
  <div class="card"><h2>Circuits</h2>
    <table><tbody>
      <tr><td>Opened</td><td class="n" id="circuits-opened">–</td></tr>
      <tr><td>Upgraded to direct <span class="muted">(closed by a peer early: an estimate)</span></td><td class="n" id="upgrades">–</td></tr>
    </tbody><tbody id="circuit-ends"></tbody></table>
  </div>
  <div class="card"><h2>Refusals by reason</h2><table><tbody id="refusals"></tbody></table><svg class="chart" id="chart-refusals" role="img" aria-label="Refusals per minute, last hour"></svg></div>
  <div class="card"><h2>Connections</h2><table><tbody>
      <tr><td>Opened</td><td class="n" id="conn-opened">–</td></tr>
      <tr><td>Closed</td><td class="n" id="conn-closed">–</td></tr>
      <tr><td>Inbound attempts</td><td class="n" id="conn-attempts">–</td></tr>
      <tr><td>Completed upgrade</td><td class="n" id="conn-successes">–</td></tr>
      <tr><td>Failed upgrade</td><td class="n" id="conn-failures">–</td></tr>
      <tr><td>Announcements rejected</td><td class="n" id="announcements-rejected">–</td></tr>
      <tr><td>Closed for a lost gossipsub stream</td><td class="n" id="pubsub-stream-losses">–</td></tr>
      <tr><td>Relayed bytes (circuits)</td><td class="n" id="bytes-circuit">–</td></tr>
      <tr><td>Discovery bytes (gossipsub)</td><td class="n" id="bytes-pubsub">–</td></tr>
  </tbody></table></div>
  <div class="card"><h2>Federated relays <span id="federated-count"></span></h2><ul id="federated"></ul><p id="federated-none" class="muted" hidden>None: this relay serves its rooms alone.</p>
    <h2 style="margin-top:1rem">Listening on</h2><ul id="multiaddrs"></ul></div>
</section>
<footer>Refreshes every 3 s from this page's own address (JSON: <code>Accept: application/json</code>, or <code>/status</code>). Charts: the last hour (or since the relay started), one point every <span id="interval">10 s</span>.</footer>
<script>
const REFUSALS = ${JSON.stringify(REFUSALS)}
const ENDS = ${JSON.stringify(CIRCUIT_ENDS)}
const $ = (id) => document.getElementById(id)
const num = (n) => Number(n).toLocaleString('en')
function text (id, v) { const el = $(id); if (el) el.textContent = v }
function uptime (ms) {
  const s = Math.floor(ms / 1000), d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60)
  return d > 0 ? d + ' d ' + h + ' h' : h > 0 ? h + ' h ' + m + ' min' : m > 0 ? m + ' min ' + (s % 60) + ' s' : s + ' s'
}
function bytes (n) { return n < 1024 ? n + ' B' : n < 1048576 ? (n / 1024).toFixed(1) + ' KiB' : (n / 1048576).toFixed(1) + ' MiB' }
function rows (tbody, entries, words) {
  tbody.replaceChildren(...entries.map(([k, n]) => {
    const tr = document.createElement('tr'); tr.dataset.zero = String(n === 0); tr.dataset.key = k
    const a = document.createElement('td'); a.textContent = words[k] || k
    const b = document.createElement('td'); b.className = 'n'; b.textContent = num(n)
    tr.append(a, b); return tr
  }))
}
/** Per-minute rates from a cumulative counter. */
function rates (history, key) {
  const out = []
  for (let i = 1; i < history.length; i++) {
    const dt = (history[i].t - history[i - 1].t) / 60000
    out.push({ t: history[i].t, v: dt > 0 ? Math.max(0, history[i][key] - history[i - 1][key]) / dt : 0 })
  }
  return out
}
function chart (id, points) {
  const svg = $(id), W = 300, H = 56, ns = 'http://www.w3.org/2000/svg'
  svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H); svg.setAttribute('preserveAspectRatio', 'none')
  if (points.length < 2) { svg.replaceChildren(); return }
  // the last hour, or since the relay started when that is less (at least a minute)
  const now = Date.now(), t0 = Math.max(now - 3600000, Math.min(points[0].t, now - 60000)), span = now - t0
  const max = Math.max(1, ...points.map((p) => p.v))
  const x = (t) => Math.max(0, (t - t0) / span * W), y = (v) => H - 2 - v / max * (H - 6)
  const d = points.map((p, i) => (i === 0 ? 'M' : 'L') + x(p.t).toFixed(1) + ' ' + y(p.v).toFixed(1)).join(' ')
  const line = document.createElementNS(ns, 'path'); line.setAttribute('class', 'line'); line.setAttribute('d', d)
  const area = document.createElementNS(ns, 'path'); area.setAttribute('class', 'area')
  area.setAttribute('d', d + ' L' + x(points[points.length - 1].t).toFixed(1) + ' ' + H + ' L' + x(points[0].t).toFixed(1) + ' ' + H + ' Z')
  const title = document.createElementNS(ns, 'title'); title.textContent = 'max ' + num(Math.round(max * 10) / 10)
  svg.replaceChildren(title, area, line)
}
function render (snap) {
  const s = snap.status, c = s.counters
  text('peer-id', s.peerId); text('uptime', uptime(s.uptimeMs)); text('interval', snap.sampleIntervalMs / 1000 + ' s')
  text('peers', num(s.connectedPeers)); text('connections', num(s.connections))
  text('reservations', num(s.reservations)); text('max-reservations', num(s.limits.maxReservations))
  text('rooms', num(s.roomsFollowed)); text('circuits-open', num(c.circuits.open))
  text('circuits-opened', num(c.circuits.opened)); text('upgrades', num(c.circuits.upgrades))
  rows($('circuit-ends'), Object.entries(c.circuits.closed), Object.fromEntries(Object.entries(ENDS).map(([k, v]) => [k, 'Ended: ' + v])))
  rows($('refusals'), Object.entries(c.refusals), REFUSALS)
  text('conn-opened', num(c.connectionsOpened)); text('conn-closed', num(c.connectionsClosed))
  text('conn-attempts', num(c.connectionAttempts ?? 0)); text('conn-successes', num(c.connectionSuccesses ?? 0)); text('conn-failures', num(c.connectionFailures ?? 0))
  text('announcements-rejected', num(c.announcementsRejected)); text('pubsub-stream-losses', num(c.pubsubStreamLosses ?? 0))
  text('bytes-circuit', bytes(s.transfer.circuit.sent + s.transfer.circuit.received)); text('bytes-pubsub', bytes(s.transfer.pubsub.sent + s.transfer.pubsub.received))
  const fed = snap.federatedRelays
  text('federated-count', '(' + fed.length + ')'); $('federated-none').hidden = fed.length > 0
  $('federated').replaceChildren(...fed.map((p) => { const li = document.createElement('li'); const code = document.createElement('code'); code.textContent = p; li.append(code); return li }))
  $('multiaddrs').replaceChildren(...s.multiaddrs.map((a) => { const li = document.createElement('li'); const code = document.createElement('code'); code.textContent = a; li.append(code); return li }))
  const h = snap.history
  chart('chart-peers', h.map((p) => ({ t: p.t, v: p.peers })))
  chart('chart-reservations', h.map((p) => ({ t: p.t, v: p.reservations })))
  chart('chart-rooms', h.map((p) => ({ t: p.t, v: p.rooms })))
  const circuitRates = rates(h, 'circuitsOpened')
  chart('chart-circuits', circuitRates)
  text('circuits-rate', circuitRates.length > 0 ? num(Math.round(circuitRates[circuitRates.length - 1].v * 10) / 10) : '0')
  chart('chart-refusals', rates(h, 'refusals'))
  document.title = s.reservations + ' reserved · p2p-rooms relay'
}
async function refresh () {
  try {
    const res = await fetch(location.pathname, { headers: { accept: 'application/json' }, cache: 'no-store' })
    if (!res.ok) throw new Error(res.status)
    render(await res.json())
    $('live').dataset.state = 'live'; $('live').textContent = 'live'
  } catch {
    $('live').dataset.state = 'stale'; $('live').textContent = 'not answering: showing the last numbers'
  }
}
refresh(); setInterval(refresh, 3000)
</script>
</body>
</html>
`
