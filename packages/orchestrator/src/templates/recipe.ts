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
  defaults: { cpuCount: number; memoryMB: number; diskSizeMB: number; pidsLimit: number }
  noNewPrivileges: boolean
}

export const BASE_RECIPE: TemplateRecipe = {
  version: 2,
  templateId: 'base',
  suite: 'bookworm',
  variant: 'minbase',
  packages: [
    'bash',
    'coreutils',
    'python3',
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
  defaults: { cpuCount: 2, memoryMB: 512, diskSizeMB: 2048, pidsLimit: 1024 },
  noNewPrivileges: true,
}

export const RECIPES: Record<string, TemplateRecipe> = { base: BASE_RECIPE }

/** The build id: the recipe and the uid shift it was prepared for (the mirror does not count). */
export function recipeHash(recipe: TemplateRecipe, uidBase: number): string {
  return createHash('sha256').update(JSON.stringify({ recipe, uidBase })).digest('hex').slice(0, 16)
}
