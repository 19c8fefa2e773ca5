import type { DescService } from '@bufbuild/protobuf'
import {
  type Client,
  Code,
  ConnectError,
  createClient,
  type Interceptor,
  type Transport,
} from '@connectrpc/connect'
import { currentRequestId, REQUEST_ID_HEADER } from './request-id.js'

/**
 * One error contract for every Warren component. Each code has an HTTP status
 * (what the REST API and proxies answer) and a Connect code (what crosses the
 * internal RPCs); the `satisfies` makes the compiler demand both for every new
 * code.
 */
export const errorCodes = {
  invalid_argument: { http: 400, connect: Code.InvalidArgument },
  unauthenticated: { http: 401, connect: Code.Unauthenticated },
  forbidden: { http: 403, connect: Code.PermissionDenied },
  not_found: { http: 404, connect: Code.NotFound },
  conflict: { http: 409, connect: Code.FailedPrecondition },
  already_exists: { http: 409, connect: Code.AlreadyExists },
  gone: { http: 410, connect: Code.NotFound },
  limit_exceeded: { http: 429, connect: Code.ResourceExhausted },
  capacity_exhausted: { http: 503, connect: Code.ResourceExhausted },
  unavailable: { http: 503, connect: Code.Unavailable },
  bad_gateway: { http: 502, connect: Code.Unavailable },
  /** A volume (or disk) is full. */
  no_space: { http: 507, connect: Code.ResourceExhausted },
  /** Data that arrived is not what its content hash says (a corrupted transfer): refused. */
  data_loss: { http: 502, connect: Code.DataLoss },
  internal: { http: 500, connect: Code.Internal },
} as const satisfies Record<string, { http: number; connect: Code }>

export type ErrorCode = keyof typeof errorCodes

export class WarrenError extends Error {
  readonly code: ErrorCode
  readonly details: Record<string, unknown> | undefined

  constructor(
    code: ErrorCode,
    message: string,
    opts: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, { cause: opts.cause })
    this.name = 'WarrenError'
    this.code = code
    this.details = opts.details
  }

  get status(): number {
    return errorCodes[this.code].http
  }
}

export function isErrorCode(value: string): value is ErrorCode {
  return Object.hasOwn(errorCodes, value)
}

/** Anything thrown becomes a WarrenError; unknown errors are a plain internal error. */
export function toWarrenError(err: unknown): WarrenError {
  if (err instanceof WarrenError) return err
  if (err instanceof ConnectError) return fromConnectError(err)
  return new WarrenError('internal', 'internal error', { cause: err })
}

const CODE_HEADER = 'warren-error-code'

/**
 * Server side of the RPC contract: WarrenErrors leave as ConnectErrors that
 * carry their Warren code; anything else leaves as an opaque internal error
 * (the cause stays in the server's log, never on the wire).
 */
export function errorInterceptor(onInternal: (err: unknown) => void): Interceptor {
  return (next) => async (req) => {
    try {
      return await next(req)
    } catch (err) {
      if (err instanceof WarrenError) {
        throw new ConnectError(err.message, errorCodes[err.code].connect, {
          [CODE_HEADER]: err.code,
        })
      }
      if (err instanceof ConnectError) throw err
      onInternal(err)
      throw new ConnectError('internal error', Code.Internal)
    }
  }
}

/** Client side of the RPC contract: ConnectErrors come back as WarrenErrors. */
export function fromConnectError(err: ConnectError): WarrenError {
  const code = err.metadata.get(CODE_HEADER)
  if (code && isErrorCode(code)) return new WarrenError(code, err.rawMessage)
  const byConnect: Partial<Record<Code, ErrorCode>> = {
    [Code.InvalidArgument]: 'invalid_argument',
    [Code.NotFound]: 'not_found',
    [Code.AlreadyExists]: 'already_exists',
    [Code.FailedPrecondition]: 'conflict',
    [Code.ResourceExhausted]: 'capacity_exhausted',
    [Code.Unavailable]: 'unavailable',
    [Code.Unauthenticated]: 'unauthenticated',
    [Code.PermissionDenied]: 'forbidden',
  }
  return new WarrenError(byConnect[err.code] ?? 'internal', err.rawMessage, { cause: err })
}

/**
 * A Connect client whose calls fail with WarrenErrors: the translation happens
 * where foreign errors enter. (It cannot be a client interceptor: Connect
 * re-wraps anything an interceptor throws that is not a ConnectError.)
 */
export function createWarrenClient<T extends DescService>(
  service: T,
  transport: Transport,
): Client<T> {
  const client = createClient(service, transport) as Record<string, (...args: unknown[]) => unknown>
  const wrapped: Record<string, unknown> = {}
  for (const name of Object.keys(client)) {
    const call = client[name]!
    wrapped[name] = (...args: unknown[]) => {
      // The request being handled here goes on with its id (request-id.ts).
      const requestId = currentRequestId()
      if (requestId) {
        const options = (args[1] ?? {}) as { headers?: ConstructorParameters<typeof Headers>[0] }
        const headers = new Headers(options.headers)
        headers.set(REQUEST_ID_HEADER, requestId)
        args[1] = { ...options, headers }
      }
      const result = call(...args)
      if (result instanceof Promise) return result.catch(rethrowTranslated)
      return translateStream(result as AsyncIterable<unknown>)
    }
  }
  return wrapped as Client<T>
}

async function* translateStream<T>(stream: AsyncIterable<T>): AsyncIterable<T> {
  try {
    yield* stream
  } catch (err) {
    rethrowTranslated(err)
  }
}

function rethrowTranslated(err: unknown): never {
  throw err instanceof ConnectError ? fromConnectError(err) : err
}
