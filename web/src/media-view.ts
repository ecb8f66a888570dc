/**
 * The call: camera, microphone and screen-share buttons, and a stage with a tile per person who
 * sends video or sound (their video, their name, a ring while they speak). Camera and screen are
 * one video stream: switching between them is `room.replaceTrack`, so nobody renegotiates; the
 * microphone is a stream of its own. In a one-way room only the host streams: a watch party.
 *
 * Public API of `p2p-rooms` only: `addStream`, `removeStream`, `replaceTrack`, and the room's
 * `stream` / `stream:end` events. Attributes the CSS and the end-to-end tests read: a tile's
 * `data-peer` and `data-speaking`, a button's `aria-pressed`.
 */
import { byId, h, nameTag } from './dom.js'
import type { Directory } from './names.js'
import type { Room } from 'p2p-rooms'

type VideoSource = 'camera' | 'screen'

/** RMS level (0…1) above which a tile shows its speaker as speaking. */
const SPEAKING_LEVEL = 0.02

interface Tile {
  el: HTMLElement
  video: HTMLVideoElement
  audio: HTMLAudioElement
  streams: Set<MediaStream>
  stopMeter?: () => void
}

export class MediaView {
  private readonly dir: Directory
  private readonly stage = byId<HTMLElement>('stage')
  private readonly tiles = byId<HTMLElement>('tiles')
  private readonly camBtn = byId<HTMLButtonElement>('cam-btn')
  private readonly micBtn = byId<HTMLButtonElement>('mic-btn')
  private readonly screenBtn = byId<HTMLButtonElement>('screen-btn')
  private readonly note = byId<HTMLElement>('media-note')
  private room?: Room
  private self = ''
  private listeners?: AbortController
  private readonly byPeer = new Map<string, Tile>()
  /** what we send: one video stream (camera or screen) and one microphone stream */
  private video?: { stream: MediaStream, source: VideoSource }
  private mic?: MediaStream
  private audioContext?: AudioContext

  constructor (dir: Directory) {
    this.dir = dir
    this.camBtn.addEventListener('click', () => { void this.toggleVideo('camera') })
    this.screenBtn.addEventListener('click', () => { void this.toggleVideo('screen') })
    this.micBtn.addEventListener('click', () => { void this.toggleMic() })
    this.render()
  }

  attach (room: Room, self: string): void {
    this.detach()
    this.room = room
    this.self = self
    const controller = new AbortController()
    const opts = { signal: controller.signal }
    room.addEventListener('stream', (e) => { this.addRemote(e.detail.peerId, e.detail.stream) }, opts)
    room.addEventListener('stream:end', (e) => { this.removeRemote(e.detail.peerId, e.detail.stream) }, opts)
    room.addEventListener('host:change', () => { this.render() }, opts)
    room.addEventListener('peer:leave', (e) => { this.dropTile(e.detail.peerId) }, opts)
    this.listeners = controller
    this.render()
  }

  /** Leaves the call of the current room: stops what we send, clears the stage. */
  detach (): void {
    this.listeners?.abort()
    this.listeners = undefined
    this.room = undefined
    this.stopVideo()
    this.stopMic()
    for (const peer of [...this.byPeer.keys()]) this.dropTile(peer)
    this.render()
  }

  // --- what we send ---------------------------------------------------------------------------

  private async toggleVideo (source: VideoSource): Promise<void> {
    const room = this.room
    if (room === undefined) return
    this.say('')
    try {
      if (this.video?.source === source) {
        await room.removeStream(this.video.stream)
        this.stopVideo()
        return
      }
      const track = await this.capture(source)
      track.addEventListener('ended', () => { if (this.video?.stream.getVideoTracks()[0] === track) void this.toggleVideo(source) })
      if (this.video !== undefined) {
        // camera ↔ screen: the same stream, a new track, no renegotiation
        const old = this.video.stream.getVideoTracks()[0]
        await room.replaceTrack(old, track)
        this.video.stream.removeTrack(old)
        old.stop()
        this.video.stream.addTrack(track)
        this.video.source = source
      } else {
        const stream = new MediaStream([track])
        await room.addStream(stream, { metadata: { kind: 'video' } })
        this.video = { stream, source }
      }
      this.showLocal()
    } catch (err) {
      this.say(problem(err, source))
    } finally {
      this.render()
    }
  }

  private async toggleMic (): Promise<void> {
    const room = this.room
    if (room === undefined) return
    this.say('')
    try {
      if (this.mic !== undefined) {
        await room.removeStream(this.mic)
        this.stopMic()
        return
      }
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true })
      await room.addStream(stream, { metadata: { kind: 'audio' } })
      this.mic = stream
      this.showLocal()
    } catch (err) {
      this.say(problem(err, 'microphone'))
    } finally {
      this.render()
    }
  }

  private async capture (source: VideoSource): Promise<MediaStreamTrack> {
    const stream = source === 'camera'
      ? await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 360 } } })
      : await navigator.mediaDevices.getDisplayMedia({ video: true })
    return stream.getVideoTracks()[0]
  }

  private stopVideo (): void {
    for (const t of this.video?.stream.getTracks() ?? []) t.stop()
    this.video = undefined
    this.showLocal()
  }

  private stopMic (): void {
    for (const t of this.mic?.getTracks() ?? []) t.stop()
    this.mic = undefined
    this.showLocal()
  }

  /** Our own tile: a muted preview of what we send. */
  private showLocal (): void {
    const streams = [this.video?.stream, this.mic].filter((s): s is MediaStream => s !== undefined)
    if (streams.length === 0) {
      this.dropTile(this.self)
      return
    }
    const tile = this.tile(this.self)
    tile.streams = new Set(streams)
    this.fill(tile, true)
  }

  // --- what we receive ------------------------------------------------------------------------

  private addRemote (peerId: string, stream: MediaStream): void {
    const tile = this.tile(peerId)
    tile.streams.add(stream)
    this.fill(tile, false)
    this.render()
  }

  private removeRemote (peerId: string, stream: MediaStream): void {
    const tile = this.byPeer.get(peerId)
    if (tile === undefined) return
    tile.streams.delete(stream)
    if (tile.streams.size === 0) this.dropTile(peerId)
    else this.fill(tile, false)
    this.render()
  }

  private tile (peerId: string): Tile {
    let tile = this.byPeer.get(peerId)
    if (tile !== undefined) return tile
    const el = h('figure', 'tile')
    el.dataset.peer = peerId
    el.dataset.speaking = 'false'
    const video = h('video', 'tile-video')
    video.autoplay = true
    video.playsInline = true
    video.muted = true
    const audio = h('audio')
    audio.autoplay = true
    const caption = h('figcaption', 'tile-name')
    caption.append(nameTag(this.dir, peerId, this.self))
    if (peerId === this.self) caption.append(h('span', 'muted', ' (you)'))
    el.append(video, audio, caption)
    // our own tile first
    if (peerId === this.self) this.tiles.prepend(el)
    else this.tiles.append(el)
    tile = { el, video, audio, streams: new Set() }
    this.byPeer.set(peerId, tile)
    return tile
  }

  /** Puts a tile's video and sound in its elements, and listens to its sound for the speaking ring. */
  private fill (tile: Tile, local: boolean): void {
    const videoTrack = [...tile.streams].flatMap((s) => s.getVideoTracks()).find((t) => t.readyState === 'live')
    const audioTracks = [...tile.streams].flatMap((s) => s.getAudioTracks()).filter((t) => t.readyState === 'live')
    const videoStream = [...tile.streams].find((s) => videoTrack !== undefined && s.getVideoTracks().includes(videoTrack))
    if (tile.video.srcObject !== (videoStream ?? null)) tile.video.srcObject = videoStream ?? null
    tile.el.dataset.video = String(videoTrack !== undefined)
    void tile.video.play().catch(() => {})
    // our own voice is not played back to us
    const audioStream = audioTracks.length > 0 ? new MediaStream(audioTracks) : null
    if (!local) {
      tile.audio.srcObject = audioStream
      void tile.audio.play().catch(() => {})
    }
    tile.stopMeter?.()
    tile.stopMeter = audioStream === null ? undefined : this.meter(audioStream, (speaking) => { tile.el.dataset.speaking = String(speaking) })
  }

  /** Calls `onChange` when the level of `stream` crosses `SPEAKING_LEVEL`; returns its stop. */
  private meter (stream: MediaStream, onChange: (speaking: boolean) => void): () => void {
    this.audioContext ??= new AudioContext()
    const ctx = this.audioContext
    void ctx.resume().catch(() => {})
    const source = ctx.createMediaStreamSource(stream)
    const analyser = ctx.createAnalyser()
    analyser.fftSize = 512
    source.connect(analyser)
    const samples = new Float32Array(analyser.fftSize)
    let speaking = false
    const timer = setInterval(() => {
      analyser.getFloatTimeDomainData(samples)
      let sum = 0
      for (const v of samples) sum += v * v
      const now = Math.sqrt(sum / samples.length) > SPEAKING_LEVEL
      if (now !== speaking) onChange(speaking = now)
    }, 150)
    return () => {
      clearInterval(timer)
      source.disconnect()
      onChange(false)
    }
  }

  private dropTile (peerId: string): void {
    const tile = this.byPeer.get(peerId)
    if (tile === undefined) return
    tile.stopMeter?.()
    tile.video.srcObject = null
    tile.audio.srcObject = null
    tile.el.remove()
    this.byPeer.delete(peerId)
    this.render()
  }

  // --- buttons --------------------------------------------------------------------------------

  private render (): void {
    const room = this.room
    const watchParty = room?.type === 'one-way' && room.host !== this.self
    const canSend = room !== undefined && !watchParty
    for (const [btn, on] of [[this.camBtn, this.video?.source === 'camera'], [this.screenBtn, this.video?.source === 'screen'], [this.micBtn, this.mic !== undefined]] as const) {
      btn.disabled = !canSend && !on
      btn.setAttribute('aria-pressed', String(on))
    }
    if (room?.type === 'one-way') {
      this.stage.dataset.mode = 'watch-party'
      if (this.note.dataset.problem !== 'true') {
        this.note.textContent = watchParty
          ? `Watch party: only the host (${this.dir.nameOf(room.host)}) streams. Their picture and sound show here.`
          : 'Watch party: you are the host, so only you stream. Share your screen, camera or microphone.'
      }
    } else {
      delete this.stage.dataset.mode
      if (this.note.dataset.problem !== 'true') this.note.textContent = room?.type === 'pairwise' ? 'Pairwise room: calls are one to one, so the demo does not stream here.' : ''
    }
    if (room?.type === 'pairwise') for (const btn of [this.camBtn, this.screenBtn, this.micBtn]) btn.disabled = true
    this.stage.hidden = this.byPeer.size === 0
  }

  private say (text: string): void {
    this.note.dataset.problem = String(text !== '')
    if (text !== '') this.note.textContent = text
  }
}

/** Why a capture or a send failed, in words. */
function problem (err: unknown, what: string): string {
  const name = (err as { name?: string })?.name
  switch (name) {
    case 'NotAllowedError': return `This browser did not allow the ${what}.`
    case 'NotFoundError': return `No ${what} found.`
    case 'NotReadableError': return `The ${what} is in use by another program.`
    case 'NotHostError': return 'Only the host streams in a watch party.'
    default: return `Could not start the ${what}: ${String((err as Error)?.message ?? err)}`
  }
}
