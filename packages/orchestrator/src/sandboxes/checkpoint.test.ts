import { describe, expect, it } from 'vitest'
import { heldSockets } from './checkpoint.js'

// What gVisor's /proc/net/tcp looked like in a sandbox (runsc exec cat).
const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   8: 0600CD0A:C33F 0500CD0A:BC1C 01 00000000:00000000 00:00000000 00000000     0        0        9 1 0000000000000000 0 0 0 0 -1
   0: 00000000:C33F 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0        1 1 0000000000000000 0 0 0 0 -1
   3: 0600CD0A:1F90 0500CD0A:BC2C 07 00000000:00000000 00:00000000 00000000     0        0       10 1 0000000000000000 0 0 0 0 -1
`
const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
`

describe('heldSockets', () => {
  it('lists every socket but closed ones, from tcp and tcp6', () => {
    expect(heldSockets(`${TCP}${TCP6}time-wait-until 5\n`)).toEqual([
      '0600CD0A:C33F→0500CD0A:BC1C 01',
      '00000000:C33F→00000000:0000 0A',
    ])
  })

  it('finds nothing in tables with only their headers', () => {
    expect(heldSockets(`${TCP.split('\n')[0]}\n${TCP6}time-wait-until \n`)).toEqual([])
  })
})
