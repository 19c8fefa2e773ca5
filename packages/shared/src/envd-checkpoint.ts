/**
 * Where envd (inside a gVisor sandbox) writes until when a connection it
 * closed first stays in TIME_WAIT — an epoch-milliseconds number. Debian's
 * gVisor refuses to checkpoint a kernel holding such a connection, drops
 * resets in TIME_WAIT and lists it nowhere the node can read, so envd says.
 */
export const ENVD_TIME_WAIT_FILE = '/run/warren-envd-time-wait'

/** gVisor's TIME_WAIT (its netstack's default). */
export const GVISOR_TIME_WAIT_MS = 60_000
