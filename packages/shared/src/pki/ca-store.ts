import { existsSync } from 'node:fs'
import { join } from 'node:path'
import {
  type CaOptions,
  type CertificateAuthority,
  certificateAuthorityFromPem,
  createCertificateAuthority,
} from './authority.js'
import { readPrivateFile, writePrivateDir } from './files.js'

/** Every stored credential is a directory holding these two files. */
export const CERT_FILE = 'cert.pem'
export const KEY_FILE = 'key.pem'

export interface StoredCa {
  ca: CertificateAuthority
  /** The CA certificate, what clients trust (e.g. NODE_EXTRA_CA_CERTS). */
  certPath: string
  /** Whether this call made it. */
  created: boolean
}

/** The CA kept in `dir`, checked. */
export async function loadCa(dir: string): Promise<StoredCa> {
  const certPath = join(dir, CERT_FILE)
  const ca = await certificateAuthorityFromPem(
    readPrivateFile(certPath),
    readPrivateFile(join(dir, KEY_FILE)),
  )
  return { ca, certPath, created: false }
}

/**
 * The CA kept in `dir`, made on first use. Processes starting together
 * agree on one CA: each builds its own, exactly one directory lands (an
 * atomic rename), and the others load it.
 */
export async function loadOrCreateCa(dir: string, opts: CaOptions): Promise<StoredCa> {
  if (existsSync(dir)) return loadCa(dir)
  const { ca, keyPem } = await createCertificateAuthority(opts)
  if (!writePrivateDir(dir, { [CERT_FILE]: ca.certPem, [KEY_FILE]: keyPem })) return loadCa(dir)
  return { ca, certPath: join(dir, CERT_FILE), created: true }
}
