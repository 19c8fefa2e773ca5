/**
 * The E2B envd version whose features this daemon implements. The SDK gates
 * features on it (file metadata 0.6.2, watch events with entries 0.6.3,
 * watching network mounts 0.6.4), so it must never claim more than is real.
 */
export const ENVD_VERSION = '0.6.4'
