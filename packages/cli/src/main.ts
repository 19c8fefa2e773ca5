#!/usr/bin/env node
import { WarrenError } from '@warren/shared'
import { Command } from 'commander'
import { registerCluster } from './commands/cluster.js'
import { registerDevCluster } from './commands/dev-cluster.js'
import { registerKeys } from './commands/keys.js'
import { registerNode } from './commands/node.js'
import { registerOrchestrator } from './commands/orchestrator.js'
import { registerPortForward } from './commands/port-forward.js'
import { registerSandbox } from './commands/sandbox.js'
import { registerServices } from './commands/services.js'
import { registerTeams } from './commands/teams.js'
import { registerTemplate } from './commands/template.js'
import { registerUp } from './commands/up.js'

const program = new Command('warren').description('Warren: sandboxes for AI agents, E2B-compatible')
registerUp(program)
registerSandbox(program)
registerPortForward(program)
registerKeys(program)
registerTeams(program)
registerTemplate(program)
registerOrchestrator(program)
registerNode(program)
registerCluster(program)
registerServices(program)
registerDevCluster(program)

program.parseAsync(process.argv).catch((err: unknown) => {
  const message =
    err instanceof WarrenError ? err.message : err instanceof Error ? err.message : String(err)
  process.stderr.write(`warren: ${message}\n`)
  process.exit(1)
})
