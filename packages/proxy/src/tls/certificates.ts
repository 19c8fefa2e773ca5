import type { SecureContext, TlsOptions } from 'node:tls'
import { operatorCertificates } from './operator.js'
import { domainHost, isServedName } from './served-names.js'
import { warrenCaCertificates } from './warren-ca.js'

/** What the edge proxy presents in TLS handshakes. */
export interface EdgeCertificates {
  /**
   * For clients that send no server name (an address in the URL), PEM; it
   * may change over time (a short-lived leaf renewed), so ask again now and then.
   */
  fallback(): Promise<{ cert: string; key: string }>
  /** For a served name (see isServedName). */
  contextFor(name: string): Promise<SecureContext>
  /** The CA clients must trust, when it is Warren's own. */
  caCertPath?: string
  /** The system's roots plus that CA, for SSL_CERT_FILE. */
  caBundlePath?: string
}

/**
 * The operator's certificate when configured, otherwise Warren's CA, and
 * the TLS options that serve them: a name outside the domain is refused
 * in the handshake.
 */
export async function edgeCertificates(cfg: {
  dataDir: string
  domain: string
  tlsCert?: string | undefined
  tlsKey?: string | undefined
}): Promise<{
  certificates: EdgeCertificates
  tlsOptions: TlsOptions
  serves: (servername: string) => boolean
}> {
  const domain = domainHost(cfg.domain)
  const certificates =
    cfg.tlsCert && cfg.tlsKey
      ? operatorCertificates(cfg.tlsCert, cfg.tlsKey, domain)
      : await warrenCaCertificates(cfg.dataDir, domain)
  const tlsOptions: TlsOptions = {
    ...(await certificates.fallback()),
    SNICallback: (servername, done) => {
      const name = servername.toLowerCase()
      if (!isServedName(name, domain)) {
        // The handshake ends here (Node closes the connection): no certificate
        // is presented, or signed, for a name the proxy does not serve.
        done(new Error(`not a sandbox host of ${domain}: ${JSON.stringify(name)}`))
        return
      }
      certificates.contextFor(name).then(
        (ctx) => done(null, ctx),
        (err: Error) => done(err),
      )
    },
  }
  return { certificates, tlsOptions, serves: (name) => isServedName(name, domain) }
}
