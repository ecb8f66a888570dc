/**
 * The parts of a room node an app may never use (files; media) are their own chunks of a bundle
 * (dynamic `import()`), fetched while the node reaches its relay: an app that only meets and
 * messages loads less before it can start, and one that sends files pays nothing extra in time,
 * since by the time a relay answered they have arrived. `npm test` checks the size of the first load (test/size).
 */
import type { FileService } from './files/service.js'
import type { MediaService } from './media/service.js'

export interface Extensions {
  FileService: typeof FileService
  MediaService: typeof MediaService
}

/** Starts fetching the extensions; await it once they are needed. */
export async function loadExtensions (): Promise<Extensions> {
  const [files, media] = await Promise.all([import('./files/service.js'), import('./media/service.js')])
  return { FileService: files.FileService, MediaService: media.MediaService }
}
