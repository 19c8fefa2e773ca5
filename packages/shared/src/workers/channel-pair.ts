import { Channel, type Message } from './channel.js'

/** Two channels joined as a worker and its primary are, each message cloned as IPC would. */
export function channelPair() {
  let a: Channel | undefined
  let b: Channel | undefined
  const deliver = (to: () => Channel | undefined) => (m: Message) => {
    const copy = structuredClone(m)
    setImmediate(() => to()?.receive(copy))
    return true
  }
  a = new Channel(deliver(() => b))
  b = new Channel(deliver(() => a))
  return { worker: a, primary: b }
}
