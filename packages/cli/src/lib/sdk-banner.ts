/** What the e2b SDK (and Python/curl clients) need to reach a Warren: printed by `up` and `dev-cluster`. */
export function sdkVariables(o: {
  apiUrl: string
  proxyUrl: string
  key: string | undefined
  caCertPath?: string | undefined
  caBundlePath?: string | undefined
}): string[] {
  return [
    o.key ? '  For the e2b SDK:' : '  No stored key: create one with `warren keys create`, then:',
    `    export E2B_API_URL=${o.apiUrl}`,
    `    export E2B_SANDBOX_URL=${o.proxyUrl}`,
    `    export E2B_API_KEY=${o.key ?? '<your key>'}`,
    // The SDK's volume file calls go to https://api.<domain> unless told otherwise.
    `    export E2B_VOLUME_API_URL=${o.apiUrl}`,
    ...(o.caCertPath
      ? [
          "  To trust the proxy's https certificates (sbx.getHost(port) over https):",
          `    export NODE_EXTRA_CA_CERTS=${o.caCertPath}`,
          // The system's roots plus the CA: these replace the default roots.
          ...(o.caBundlePath
            ? [
                `    export SSL_CERT_FILE=${o.caBundlePath}    # Python (ssl, urllib, httpx)`,
                `    export CURL_CA_BUNDLE=${o.caBundlePath}   # curl, requests`,
              ]
            : []),
        ]
      : []),
  ]
}
