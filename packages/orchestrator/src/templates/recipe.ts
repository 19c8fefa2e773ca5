import { createHash } from 'node:crypto'

/** How a template's root filesystem is made; its hash keys the cached build. */
export interface TemplateRecipe {
  /** Bumped when the build procedure itself changes. */
  version: number
  templateId: string
  suite: string
  variant: string
  packages: string[]
  user: { name: string; uid: number; home: string; sudo: boolean }
  /** Install the host's Node.js and npm (the ones Warren runs on) at /usr/local. */
  hostNode: boolean
  defaults: { cpuCount: number; memoryMB: number; diskSizeMB: number; pidsLimit: number }
  noNewPrivileges: boolean
}

/** E2B's base image: Debian with python (and pip that installs), Node.js and npm, git, curl, sudo. */
export const BASE_RECIPE: TemplateRecipe = {
  version: 3,
  templateId: 'base',
  suite: 'bookworm',
  variant: 'minbase',
  packages: [
    'bash',
    'coreutils',
    'python3',
    'python-is-python3',
    'python3-pip',
    'python3-venv',
    'curl',
    'git',
    'sudo',
    'procps',
    'iproute2',
    'ca-certificates',
    // The host's Node binary (mounted for envd) links against these.
    'libstdc++6',
    'libgcc-s1',
  ],
  user: { name: 'user', uid: 1000, home: '/home/user', sudo: true },
  hostNode: true,
  defaults: { cpuCount: 2, memoryMB: 512, diskSizeMB: 2048, pidsLimit: 1024 },
  // sudo is setuid: it needs privileges to be gained. Root in a sandbox is an
  // unprivileged host uid in its own user namespace, so this gains nothing on the host.
  noNewPrivileges: false,
}

export const RECIPES: Record<string, TemplateRecipe> = { base: BASE_RECIPE }

/**
 * The build id: the recipe, the uid shift it was prepared for and the host
 * Node.js it copies (the mirror does not count).
 */
export function recipeHash(recipe: TemplateRecipe, uidBase: number): string {
  const node = recipe.hostNode ? process.version : undefined
  return createHash('sha256')
    .update(JSON.stringify({ recipe, uidBase, node }))
    .digest('hex')
    .slice(0, 16)
}
