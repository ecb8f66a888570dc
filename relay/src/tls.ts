/**
 * Hands a renewed TLS certificate to libp2p's WebSockets listener. The listener takes one from
 * libp2p's internal event bus (`certificate:renew`, how libp2p's auto-tls renews), which only
 * services can reach: this service is that bridge.
 */
import type { Libp2pEvents, TLSCertificate } from '@libp2p/interface'
import type { TypedEventTarget } from 'main-event'

export interface CertificateRenewal {
  /** New TLS connections get `certificate`; open ones keep theirs. */
  renew(certificate: TLSCertificate): void
}

export function certificateRenewal (): (components: { events: TypedEventTarget<Libp2pEvents> }) => CertificateRenewal {
  return (components) => ({
    renew: (certificate) => { components.events.safeDispatchEvent('certificate:renew', { detail: certificate }) }
  })
}
